package backend

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/buntdb"
)

// DirectoryProfileRef names a directory sync profile of a tenant. The
// provider lists them so that a scheduler finds every profile without
// opening every tenant.
type DirectoryProfileRef struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

const dirProfilePrefix = "dirprofile:"

// RegisterDirectoryProfile adds (or with registered false removes) a
// profile to the provider's list.
func (p *Provider) RegisterDirectoryProfile(tenant, name string, registered bool) error {
	if err := CheckTenantName(tenant); err != nil {
		return err
	}
	if err := CheckDirectorySource(name); err != nil {
		return err
	}
	key := dirProfilePrefix + tenant + "/" + name
	err := p.db.Update(func(tx *buntdb.Tx) error {
		if registered {
			_, _, err := tx.Set(key, "", nil)
			return err
		}
		_, err := tx.Delete(key)
		if errors.Is(err, buntdb.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("register directory profile %s/%s: %w", tenant, name, err)
	}
	return nil
}

// DirectoryProfiles lists the registered profiles of all tenants.
func (p *Provider) DirectoryProfiles() ([]DirectoryProfileRef, error) {
	var out []DirectoryProfileRef
	err := p.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendGreaterOrEqual("", dirProfilePrefix, func(k, v string) bool {
			rest, ok := strings.CutPrefix(k, dirProfilePrefix)
			if !ok {
				return false
			}
			if tenant, name, ok := strings.Cut(rest, "/"); ok {
				out = append(out, DirectoryProfileRef{Tenant: tenant, Name: name})
			}
			return true
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list directory profiles: %w", err)
	}
	return out, nil
}
