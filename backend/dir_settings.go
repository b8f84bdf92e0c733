package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/buntdb"
)

// settingPrefix keeps settings apart from the archive's own records in the
// tenant's metadata file.
const settingPrefix = "setting:"

// PutSetting stores a small named record of a feature (such as a directory
// sync profile), replacing an earlier one. Secrets inside it are sealed
// first (Seal), so they are unreadable without the master key, like mail.
func (t *Tenant) PutSetting(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("%w: empty setting name", ErrInvalid)
	}
	t.touch()
	t.wmu.Lock()
	defer t.wmu.Unlock()
	err := t.db.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(settingPrefix+key, string(value), nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("store setting %q of tenant %q: %w", key, t.Name, err)
	}
	return nil
}

// GetSetting returns the value stored under key, or ErrNotFound.
func (t *Tenant) GetSetting(key string) ([]byte, error) {
	t.touch()
	var v string
	err := t.db.View(func(tx *buntdb.Tx) error {
		var err error
		v, err = tx.Get(settingPrefix + key)
		return err
	})
	if errors.Is(err, buntdb.ErrNotFound) {
		return nil, fmt.Errorf("setting %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read setting %q of tenant %q: %w", key, t.Name, err)
	}
	return []byte(v), nil
}

// DeleteSetting removes key; removing a missing key is not an error.
func (t *Tenant) DeleteSetting(ctx context.Context, key string) error {
	t.touch()
	t.wmu.Lock()
	defer t.wmu.Unlock()
	err := t.db.Update(func(tx *buntdb.Tx) error {
		_, err := tx.Delete(settingPrefix + key)
		if errors.Is(err, buntdb.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete setting %q of tenant %q: %w", key, t.Name, err)
	}
	return nil
}

// Settings returns the keys and values of every setting whose key starts
// with prefix, in key order.
func (t *Tenant) Settings(prefix string) (keys []string, values [][]byte, err error) {
	t.touch()
	err = t.db.View(func(tx *buntdb.Tx) error {
		tx.AscendGreaterOrEqual("", settingPrefix+prefix, func(k, v string) bool {
			key, ok := strings.CutPrefix(k, settingPrefix)
			if !ok || !strings.HasPrefix(key, prefix) {
				return false
			}
			keys = append(keys, key)
			values = append(values, []byte(v))
			return true
		})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list settings %q of tenant %q: %w", prefix, t.Name, err)
	}
	return keys, values, nil
}

// Seal encrypts a secret with the tenant's data key. purpose binds the
// result to one use (e.g. "dirsync bind password corp"): a sealed value
// copied to another place does not open there.
func (t *Tenant) Seal(purpose string, plain []byte) []byte {
	return t.seal.Seal(plain, []byte("setting "+purpose))
}

// Unseal opens what Seal produced for the same purpose.
func (t *Tenant) Unseal(purpose string, sealed []byte) ([]byte, error) {
	plain, err := t.seal.Open(sealed, []byte("setting "+purpose))
	if err != nil {
		return nil, fmt.Errorf("unseal %s of tenant %q: %w", purpose, t.Name, err)
	}
	return plain, nil
}
