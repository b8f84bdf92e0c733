package backend

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailvault/mailvault/store"
)

// blobsMarker names the file in a tenant's directory that records where
// its blobs are, so that a tenant is never opened against the wrong store
// (its messages would all look missing, and new ones would go elsewhere).
const blobsMarker = "blobs"

// TenantS3 is the object store location of one tenant: "{tenant}" in the
// bucket or prefix is replaced by its name, else the name is appended to
// the prefix as a folder of its own.
func TenantS3(cfg store.S3Config, tenant string) store.S3Config {
	if strings.Contains(cfg.Bucket, "{tenant}") || strings.Contains(cfg.Prefix, "{tenant}") {
		cfg.Bucket = strings.ReplaceAll(cfg.Bucket, "{tenant}", tenant)
		cfg.Prefix = strings.ReplaceAll(cfg.Prefix, "{tenant}", tenant)
		return cfg
	}
	cfg.Prefix += tenant + "/"
	return cfg
}

// openBlobs opens the tenant's blob store: pack files in its directory, or
// its objects on the configured object store.
func (p *Provider) openBlobs(ctx context.Context, dir, name string, log *slog.Logger) (store.Blobs, error) {
	want := "packs"
	var s3 store.S3Config
	if p.opt.S3 != nil {
		s3 = TenantS3(*p.opt.S3, name)
		want = fmt.Sprintf("s3 %s %s", s3.Bucket, s3.Prefix)
	}
	// Only a tenant on an object store has the marker: the tenants of a
	// data directory from before it keep their blobs in packs.
	marker := filepath.Join(dir, blobsMarker)
	have, err := os.ReadFile(marker)
	switch {
	case err == nil:
		if got := strings.TrimSpace(string(have)); got != want {
			return nil, fmt.Errorf("the tenant's blobs are in %q but the configuration says %q (moving blobs between stores is not supported; edit %s if the objects were moved)", got, want, marker)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read blob store marker: %w", err)
	case p.opt.S3 != nil && hasPacks(filepath.Join(dir, "packs")):
		return nil, fmt.Errorf("the tenant's blobs are in pack files but the configuration says %q (moving blobs between stores is not supported)", want)
	case p.opt.S3 != nil:
		if err := os.WriteFile(marker, []byte(want+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("record blob store: %w", err)
		}
		if err := store.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	if p.opt.S3 == nil {
		return store.OpenPackBlobs(filepath.Join(dir, "packs"), log)
	}
	return store.OpenS3Blobs(ctx, s3, log)
}

// hasPacks reports whether a pack directory holds any record.
func hasPacks(dir string) bool {
	names, _ := filepath.Glob(filepath.Join(dir, "*.pack"))
	for _, n := range names {
		if st, err := os.Stat(n); err == nil && st.Size() > 0 {
			return true
		}
	}
	return false
}
