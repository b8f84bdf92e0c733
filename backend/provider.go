package backend

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/store"
)

// Options configure a Provider.
type Options struct {
	DataDir        string
	Logger         *slog.Logger
	MaxIndexedText int
	IdleClose      time.Duration
	CommitDelay    time.Duration
	// Disk keeps free space for the archive; nil sets no floors.
	Disk *DiskLimits
	// Directory authenticates directory-synced users; nil refuses them.
	Directory Authenticator
	// Login bounds and throttles password checks.
	Login LoginLimits
	// TSA timestamps the chain heads (RFC 3161); nil or no URL takes none.
	TSA *TSAOptions
	// RetentionInterval is how often the retention job runs; 0: never
	// (it can be run on demand).
	RetentionInterval time.Duration
	// Now is the clock retention judges by; nil: time.Now.
	Now func() time.Time
	// Metrics registers the archive's Prometheus series; nil keeps them
	// unregistered.
	Metrics prometheus.Registerer
	// S3 keeps the tenants' blobs on an S3-compatible object store (each
	// under its own prefix, see TenantS3); nil keeps them in pack files.
	S3 *store.S3Config
}

// Authenticator checks a password against an external directory.
type Authenticator interface {
	Authenticate(ctx context.Context, tenant string, user *User, password string) error
}

// Provider is the whole archive: the registry of tenants and the tenants
// opened on demand.
type Provider struct {
	opt    Options
	log    *slog.Logger
	lock   *store.DirLock
	master []byte
	db     *buntdb.DB
	token  string
	gate   *loginGate
	space  *diskGuard // nil: no floors
	met    *metrics

	mu      sync.Mutex
	tenants map[string]*Tenant
	broken  map[string]error // tenants whose last open failed, for Ready
	// closedUsage is what the metrics report of a tenant closed for
	// idleness (it does not change while closed).
	closedUsage map[string]usage
	closing     bool
	stop        chan struct{}
	wg          sync.WaitGroup
}

// Open locks the data directory and opens the provider registry, creating
// the master key and the provider API token on first start.
func Open(opt Options) (*Provider, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.MaxIndexedText <= 0 {
		opt.MaxIndexedText = 1 << 20
	}
	if opt.IdleClose <= 0 {
		opt.IdleClose = 10 * time.Minute
	}
	if err := os.MkdirAll(opt.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	lock, err := store.LockDir(opt.DataDir)
	if err != nil {
		return nil, err
	}
	p := &Provider{opt: opt, log: opt.Logger, lock: lock, tenants: map[string]*Tenant{}, broken: map[string]error{}, closedUsage: map[string]usage{}, stop: make(chan struct{}), gate: newLoginGate(opt.Login)}
	if opt.Disk != nil {
		p.space = newDiskGuard(opt.DataDir, *opt.Disk, opt.Logger)
	}
	p.met = newMetrics(p, opt.Metrics)
	ok := false
	defer func() {
		if !ok {
			lock.Unlock()
		}
	}()
	var created bool
	p.master, created, err = store.LoadOrCreateMasterKey(filepath.Join(opt.DataDir, "master.key"))
	if err != nil {
		return nil, err
	}
	if created {
		p.log.Warn("created a new master key: back it up apart from the data (see docs/operations.md)", "file", filepath.Join(opt.DataDir, "master.key"))
	}
	p.token, err = loadOrCreateToken(filepath.Join(opt.DataDir, "provider.token"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opt.DataDir, "tenants"), 0o700); err != nil {
		return nil, err
	}
	p.db, err = store.OpenKV(filepath.Join(opt.DataDir, "provider.db"))
	if err != nil {
		return nil, err
	}
	ok = true
	p.wg.Add(1)
	go p.closeIdle()
	if opt.RetentionInterval > 0 {
		p.wg.Add(1)
		go p.runRetentionJob(opt.RetentionInterval)
	}
	return p, nil
}

func (p *Provider) now() time.Time {
	if p.opt.Now != nil {
		return p.opt.Now()
	}
	return time.Now()
}

func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !os.IsNotExist(err) {
		return "", fmt.Errorf("read provider token: %w", err)
	}
	buf := make([]byte, 24)
	rand.Read(buf)
	tok := "mvp_" + hex.EncodeToString(buf)
	if err := store.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("create provider token: %w", err)
	}
	return tok, nil
}

// CheckProviderToken compares in constant time.
func (p *Provider) CheckProviderToken(tok string) bool {
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(p.token)) == 1
}

// Close closes every tenant and releases the data directory.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return nil
	}
	p.closing = true
	close(p.stop)
	ts := p.tenants
	p.tenants = map[string]*Tenant{}
	p.mu.Unlock()
	p.wg.Wait()
	var errs []error
	for _, t := range ts {
		errs = append(errs, t.close())
	}
	errs = append(errs, p.db.Close(), p.lock.Unlock())
	return errors.Join(errs...)
}

func (p *Provider) closeIdle() {
	defer p.wg.Done()
	tick := time.NewTicker(p.opt.IdleClose / 4)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		for name, t := range p.tenants {
			if t.idleSince(p.opt.IdleClose) {
				delete(p.tenants, name)
				go func() {
					u := t.usage()
					p.mu.Lock()
					p.closedUsage[name] = u
					p.mu.Unlock()
					if err := t.close(); err != nil {
						p.log.Error("close idle tenant", "tenant", name, "err", err)
					} else {
						p.log.Info("closed idle tenant", "tenant", name)
					}
				}()
			}
		}
		p.mu.Unlock()
	}
}

// CreateTenant registers a tenant with a fresh data key. With no domain
// given, the tenant's name is its domain.
func (p *Provider) CreateTenant(ctx context.Context, name string, domains []string, q Quotas) (*TenantInfo, error) {
	if err := CheckTenantName(name); err != nil {
		return nil, err
	}
	if len(domains) == 0 {
		domains = []string{name}
	}
	var norm []string
	for _, d := range domains {
		nd, err := NormalizeDomain(d)
		if err != nil {
			return nil, err
		}
		norm = append(norm, nd)
	}
	wrapped, err := store.WrapKey(p.master, store.NewKey(), name)
	if err != nil {
		return nil, err
	}
	info := &TenantInfo{Name: name, Domains: norm, Quotas: q, Created: time.Now().UTC(), WrappedKey: wrapped}
	err = p.db.Update(func(tx *buntdb.Tx) error {
		if _, err := tx.Get("tenant:" + name); err == nil {
			return fmt.Errorf("tenant %q %w", name, ErrExists)
		}
		for _, d := range norm {
			if other, err := tx.Get("domain:" + d); err == nil {
				return fmt.Errorf("domain %s belongs to tenant %q: %w", d, other, ErrExists)
			}
		}
		b, _ := json.Marshal(info)
		if _, _, err := tx.Set("tenant:"+name, string(b), nil); err != nil {
			return err
		}
		for _, d := range norm {
			if _, _, err := tx.Set("domain:"+d, name, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create tenant: %w", err)
	}
	p.log.Info("tenant created", "tenant", name, "domains", norm)
	return info, nil
}

// AddDomain assigns one more domain to a tenant; a domain belongs to one
// tenant only.
func (p *Provider) AddDomain(ctx context.Context, tenant, domain string) error {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return err
	}
	err = p.updateTenantInfo(tenant, func(tx *buntdb.Tx, info *TenantInfo) error {
		if other, err := tx.Get("domain:" + d); err == nil {
			return fmt.Errorf("domain %s belongs to tenant %q: %w", d, other, ErrExists)
		}
		info.Domains = append(info.Domains, d)
		_, _, err := tx.Set("domain:"+d, tenant, nil)
		return err
	})
	if err == nil {
		p.log.Info("domain added", "tenant", tenant, "domain", d)
	}
	return err
}

// SetTenantOptions changes quotas and the automatic mailbox option.
func (p *Provider) SetTenantOptions(ctx context.Context, tenant string, q *Quotas, autoMailboxes *bool) error {
	return p.updateTenantInfo(tenant, func(tx *buntdb.Tx, info *TenantInfo) error {
		if q != nil {
			info.Quotas = *q
		}
		if autoMailboxes != nil {
			info.AutoMailboxes = *autoMailboxes
		}
		return nil
	})
}

func (p *Provider) updateTenantInfo(tenant string, fn func(*buntdb.Tx, *TenantInfo) error) error {
	var info TenantInfo
	err := p.db.Update(func(tx *buntdb.Tx) error {
		v, err := tx.Get("tenant:" + tenant)
		if err != nil {
			return fmt.Errorf("tenant %q: %w", tenant, ErrNotFound)
		}
		if err := json.Unmarshal([]byte(v), &info); err != nil {
			return err
		}
		if err := fn(tx, &info); err != nil {
			return err
		}
		b, _ := json.Marshal(&info)
		_, _, err = tx.Set("tenant:"+tenant, string(b), nil)
		return err
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	if t := p.tenants[tenant]; t != nil {
		t.setInfo(&info)
	}
	p.mu.Unlock()
	return nil
}

// TenantInfo returns a tenant's registry entry.
func (p *Provider) TenantInfo(name string) (*TenantInfo, error) {
	var info TenantInfo
	err := p.db.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get("tenant:" + name)
		if err != nil {
			return fmt.Errorf("tenant %q: %w", name, ErrNotFound)
		}
		return json.Unmarshal([]byte(v), &info)
	})
	return &info, err
}

// Tenants lists every tenant.
func (p *Provider) Tenants() ([]*TenantInfo, error) {
	var out []*TenantInfo
	err := p.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("tenant:*", func(k, v string) bool {
			var info TenantInfo
			if json.Unmarshal([]byte(v), &info) == nil {
				out = append(out, &info)
			}
			return true
		})
	})
	return out, err
}

// TenantForDomain names the tenant a domain belongs to.
func (p *Provider) TenantForDomain(domain string) (string, error) {
	var name string
	err := p.db.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get("domain:" + strings.ToLower(domain))
		name = v
		return err
	})
	if err != nil {
		return "", fmt.Errorf("domain %s: %w", domain, ErrNotFound)
	}
	return name, nil
}

// TenantForAddress finds the tenant of an e-mail address by its domain.
func (p *Provider) TenantForAddress(ctx context.Context, addr string) (*Tenant, error) {
	a, err := NormalizeAddress(addr)
	if err != nil {
		return nil, err
	}
	name, err := p.TenantForDomain(domainOf(a))
	if err != nil {
		return nil, err
	}
	return p.Tenant(ctx, name)
}

// Tenant returns the open tenant, opening it if needed.
func (p *Provider) Tenant(ctx context.Context, name string) (*Tenant, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return nil, ErrTenantClosed
	}
	if t := p.tenants[name]; t != nil {
		t.touch()
		return t, nil
	}
	info, err := p.TenantInfo(name)
	if err != nil {
		return nil, err
	}
	key, err := store.UnwrapKey(p.master, info.WrappedKey, name)
	if err != nil {
		p.broken[name] = err
		return nil, err
	}
	t, err := openTenant(ctx, p, info, key)
	if err != nil {
		err = fmt.Errorf("open tenant %q: %w", name, err)
		if ctx.Err() == nil {
			p.broken[name] = err
		}
		return nil, err
	}
	delete(p.broken, name)
	p.tenants[name] = t
	return t, nil
}

func (p *Provider) tenantDir(name string) string {
	return filepath.Join(p.opt.DataDir, "tenants", name)
}

// hasDomain reports whether d belongs to the tenant.
func (info *TenantInfo) hasDomain(d string) bool { return slices.Contains(info.Domains, d) }
