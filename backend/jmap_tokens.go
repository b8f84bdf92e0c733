package backend

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
)

// API tokens let scripts use JMAP without the user's password: a user
// creates them (authenticated by password) and revokes them; a token reads
// exactly what its user may read, and stops working when the user is
// disabled or deleted. Only a SHA-256 of the secret is stored: the secret is
// 32 random bytes, so a slow password hash would add nothing.

// APIToken describes a token; the secret is shown once, at creation.
type APIToken struct {
	ID      string    `json:"id"`
	Login   string    `json:"login"`
	Label   string    `json:"label,omitempty"`
	Created time.Time `json:"created"`
	Hash    string    `json:"hash,omitempty"` // hex SHA-256 of the secret; never returned
}

const (
	tokenPrefix       = "mvt"
	maxTokensPerUser  = 100
	maxTokenLabel     = 200
	tokenIDBytes      = 8
	tokenSecretBytes  = 32
	apiTokenKeyPrefix = "apitoken:"
)

// CreateAPIToken creates a token for the user and returns it in full
// ("mvt.<tenant>.<id>.<secret>"); only its hash is kept.
func (t *Tenant) CreateAPIToken(ctx context.Context, login, label string) (string, APIToken, error) {
	t.touch()
	login = strings.ToLower(login)
	if len(label) > maxTokenLabel || strings.ContainsAny(label, "\r\n") {
		return "", APIToken{}, fmt.Errorf("%w token label: at most %d characters on one line", ErrInvalid, maxTokenLabel)
	}
	if u, err := t.User(login); err != nil || !u.Active(time.Now()) {
		return "", APIToken{}, fmt.Errorf("user %s: %w", login, ErrNotFound)
	}
	idb := make([]byte, tokenIDBytes)
	randRead(idb)
	secret := make([]byte, tokenSecretBytes)
	randRead(secret)
	sec := b64.EncodeToString(secret)
	sum := sha256.Sum256([]byte(sec))
	tok := APIToken{ID: hex.EncodeToString(idb), Login: login, Label: label, Created: time.Now().UTC(), Hash: hex.EncodeToString(sum[:])}
	t.wmu.Lock()
	err := t.db.Update(func(tx *buntdb.Tx) error {
		n := 0
		err := tx.AscendKeys(apiTokenKeyPrefix+"*", func(k, v string) bool {
			var o APIToken
			if json.Unmarshal([]byte(v), &o) == nil && o.Login == login {
				n++
			}
			return true
		})
		if err != nil {
			return err
		}
		if n >= maxTokensPerUser {
			return fmt.Errorf("%w: at most %d API tokens per user; revoke one first", ErrQuota, maxTokensPerUser)
		}
		return setJSON(tx, apiTokenKeyPrefix+tok.ID, &tok)
	})
	t.wmu.Unlock()
	if err != nil {
		return "", APIToken{}, fmt.Errorf("create API token: %w", err)
	}
	t.Audit(ctx, login, "api-token-create", tok.ID+" "+label)
	tok.Hash = ""
	return strings.Join([]string{tokenPrefix, t.Name, tok.ID, sec}, "."), tok, nil
}

// APITokens lists the user's tokens, oldest first, without hashes.
func (t *Tenant) APITokens(login string) ([]APIToken, error) {
	login = strings.ToLower(login)
	var out []APIToken
	err := t.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys(apiTokenKeyPrefix+"*", func(k, v string) bool {
			var o APIToken
			if json.Unmarshal([]byte(v), &o) == nil && o.Login == login {
				o.Hash = ""
				out = append(out, o)
			}
			return true
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	slices.SortFunc(out, func(a, b APIToken) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// RevokeAPIToken deletes one of the user's tokens.
func (t *Tenant) RevokeAPIToken(ctx context.Context, login, id string) error {
	login = strings.ToLower(login)
	t.wmu.Lock()
	err := t.db.Update(func(tx *buntdb.Tx) error {
		v, err := tx.Get(apiTokenKeyPrefix + id)
		if errors.Is(err, buntdb.ErrNotFound) {
			return fmt.Errorf("API token %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var o APIToken
		if err := json.Unmarshal([]byte(v), &o); err != nil || o.Login != login {
			return fmt.Errorf("API token %q: %w", id, ErrNotFound)
		}
		_, err = tx.Delete(apiTokenKeyPrefix + id)
		return err
	})
	t.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("revoke API token: %w", err)
	}
	t.Audit(ctx, login, "api-token-revoke", id)
	return nil
}

// TokenLogin authenticates an API token and returns its tenant and user.
// Anything wrong with the token gives ErrAuthFailed.
func (p *Provider) TokenLogin(ctx context.Context, token string) (*Tenant, *User, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != tokenPrefix || CheckTenantName(parts[1]) != nil ||
		len(parts[2]) != 2*tokenIDBytes || parts[3] == "" {
		return nil, nil, ErrAuthFailed
	}
	if _, err := hex.DecodeString(parts[2]); err != nil {
		return nil, nil, ErrAuthFailed
	}
	t, err := p.Tenant(ctx, parts[1])
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrAuthFailed
	}
	if err != nil {
		return nil, nil, err
	}
	var tok APIToken
	err = t.db.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(apiTokenKeyPrefix + parts[2])
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(v), &tok)
	})
	if errors.Is(err, buntdb.ErrNotFound) {
		return nil, nil, ErrAuthFailed
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read API token: %w", err)
	}
	sum := sha256.Sum256([]byte(parts[3]))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(tok.Hash)) != 1 {
		return nil, nil, ErrAuthFailed
	}
	t.mu.RLock()
	u := t.users[tok.Login]
	t.mu.RUnlock()
	if u == nil || !u.Active(time.Now()) {
		return nil, nil, ErrAuthFailed
	}
	cp := *u
	cp.PasswordHash = ""
	return t, &cp, nil
}
