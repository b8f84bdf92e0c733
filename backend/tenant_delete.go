package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tidwall/buntdb"
)

// A tenant's end of life: the provider schedules the deletion of a whole
// tenant with a grace period, during which it can be cancelled and the
// tenant works as before. When the grace period has passed, the retention
// job deletes the tenant unless a legal hold of the tenant is active (it
// then waits until the hold is lifted): its data key is removed from the
// provider registry (which is compacted, so the wrapped key is gone from
// its file), its files are removed, and a record of the deletion stays.

// DeletedTenant is the provider's record of a deleted tenant.
type DeletedTenant struct {
	Name        string    `json:"name"`
	Domains     []string  `json:"domains"`
	RequestedBy string    `json:"requested_by"`
	Scheduled   time.Time `json:"scheduled"`
	Deleted     time.Time `json:"deleted"`
}

// ScheduleTenantDeletion schedules the deletion of a tenant after grace.
// A tenant under an active legal hold cannot be scheduled.
func (p *Provider) ScheduleTenantDeletion(ctx context.Context, name string, grace time.Duration) (*TenantInfo, error) {
	if grace < 0 {
		return nil, fmt.Errorf("%w: negative grace period", ErrInvalid)
	}
	t, err := p.Tenant(ctx, name)
	if err != nil {
		return nil, err
	}
	if held, err := t.activeHolds(); err != nil {
		return nil, err
	} else if held > 0 {
		return nil, fmt.Errorf("%w: tenant %q is under %d legal hold(s); they must be lifted first", ErrDenied, name, held)
	}
	at := p.now().UTC().Add(grace)
	actor := ActorOf(ctx)
	if err := p.updateTenantInfo(name, func(_ *buntdb.Tx, info *TenantInfo) error {
		info.DeleteAfter, info.DeleteBy = &at, actor
		return nil
	}); err != nil {
		return nil, err
	}
	t.Audit(ctx, actor, "tenant-delete-scheduled", "the tenant and its keys are deleted after "+at.Format(time.RFC3339))
	p.log.Warn("tenant deletion scheduled", "tenant", name, "after", at)
	return p.TenantInfo(name)
}

// CancelTenantDeletion cancels a scheduled deletion.
func (p *Provider) CancelTenantDeletion(ctx context.Context, name string) error {
	info, err := p.TenantInfo(name)
	if err != nil {
		return err
	}
	if info.DeleteAfter == nil {
		return fmt.Errorf("%w: tenant %q is not scheduled for deletion", ErrInvalid, name)
	}
	if err := p.updateTenantInfo(name, func(_ *buntdb.Tx, info *TenantInfo) error {
		info.DeleteAfter, info.DeleteBy = nil, ""
		return nil
	}); err != nil {
		return err
	}
	if t, err := p.Tenant(ctx, name); err == nil {
		t.Audit(ctx, ActorOf(ctx), "tenant-delete-cancelled", "")
	}
	return nil
}

// DeletedTenants lists the records of deleted tenants.
func (p *Provider) DeletedTenants() ([]DeletedTenant, error) {
	var out []DeletedTenant
	err := p.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("deleted-tenant:*", func(k, v string) bool {
			var d DeletedTenant
			if json.Unmarshal([]byte(v), &d) == nil {
				out = append(out, d)
			}
			return true
		})
	})
	return out, err
}

func (t *Tenant) activeHolds() (int, error) {
	hs, err := t.Holds()
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range hs {
		if hs[i].Active() {
			n++
		}
	}
	return n, nil
}

// deleteDueTenants deletes the tenants whose grace period has passed and
// that no legal hold keeps; it returns the names deleted.
func (p *Provider) deleteDueTenants(ctx context.Context) ([]string, error) {
	infos, err := p.Tenants()
	if err != nil {
		return nil, err
	}
	var done []string
	now := p.now()
	for _, info := range infos {
		if info.DeleteAfter == nil || now.Before(*info.DeleteAfter) {
			continue
		}
		t, err := p.Tenant(ctx, info.Name)
		if err != nil {
			p.log.Error("tenant end of life: open tenant", "tenant", info.Name, "err", err)
			continue
		}
		if held, err := t.activeHolds(); err != nil || held > 0 {
			p.log.Warn("tenant end of life waits: legal hold", "tenant", info.Name, "holds", held, "err", err)
			continue
		}
		if err := p.destroyTenant(info); err != nil {
			return done, err
		}
		done = append(done, info.Name)
	}
	return done, nil
}

// destroyTenant removes a tenant's key, registry entry and files. The
// registry entry goes under p.mu, so no open of the tenant can come
// between it and the removal of the files.
func (p *Provider) destroyTenant(info *TenantInfo) error {
	rec := DeletedTenant{Name: info.Name, Domains: info.Domains, RequestedBy: info.DeleteBy, Scheduled: *info.DeleteAfter, Deleted: p.now().UTC()}
	p.mu.Lock()
	err := p.db.Update(func(tx *buntdb.Tx) error {
		if _, err := tx.Delete("tenant:" + info.Name); err != nil {
			return err
		}
		for _, d := range info.Domains {
			if v, err := tx.Get("domain:" + d); err == nil && v == info.Name {
				if _, err := tx.Delete("domain:" + d); err != nil {
					return err
				}
			}
		}
		b, _ := json.Marshal(&rec)
		_, _, err := tx.Set("deleted-tenant:"+info.Name, string(b), nil)
		return err
	})
	t := p.tenants[info.Name]
	if err == nil {
		delete(p.tenants, info.Name)
		delete(p.closedUsage, info.Name)
		delete(p.broken, info.Name)
	}
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("tenant end of life %q: %w", info.Name, err)
	}
	if t != nil {
		if err := t.close(); err != nil {
			p.log.Error("tenant end of life: close", "tenant", info.Name, "err", err)
		}
	}
	// The registry's log still holds the wrapped key until rewritten.
	if err := p.db.Shrink(); err != nil {
		p.log.Error("tenant end of life: compact the provider registry", "err", err)
	}
	if f, err := os.Open(filepath.Join(p.opt.DataDir, "provider.db")); err == nil {
		f.Sync()
		f.Close()
	}
	if err := os.RemoveAll(p.tenantDir(info.Name)); err != nil {
		return fmt.Errorf("tenant end of life %q: remove files: %w", info.Name, err)
	}
	p.log.Warn("tenant deleted: its key and files are gone", "tenant", info.Name)
	return nil
}
