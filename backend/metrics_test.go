package backend

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestTenantUsageAfterIdleClose: a tenant closed for idleness keeps its
// usage in the metrics; its index series go with it.
func TestTenantUsageAfterIdleClose(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := Open(Options{DataDir: t.TempDir(), Logger: testLogger(t), IdleClose: time.Second, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	tn, err := p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	release := tn.Hold()
	size := 0
	for _, m := range []string{"Subject: a\r\n\r\none\r\n", "Subject: b\r\n\r\ntwo\r\n", "Subject: c\r\n\r\nthree\r\n"} {
		if _, err := tn.Ingest(ctx, []byte(m), Source{Mailbox: "alice@acme.example"}); err != nil {
			t.Fatal(err)
		}
		size += len(m)
	}
	release()
	gauge := func(name string) (float64, bool) {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == name {
				for _, m := range f.Metric {
					return m.GetGauge().GetValue(), true
				}
			}
		}
		return 0, false
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n, _ := gauge("mailvault_tenants_open"); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tenant not closed while idle")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, ok := gauge("mailvault_tenant_messages"); !ok || n != 3 {
		t.Errorf("messages of the closed tenant: %v (reported %v)", n, ok)
	}
	if n, ok := gauge("mailvault_tenant_bytes"); !ok || n != float64(size) {
		t.Errorf("bytes of the closed tenant: %v, want %d (reported %v)", n, size, ok)
	}
	if _, ok := gauge("mailvault_index_lag_messages"); ok {
		t.Error("index lag reported for a closed tenant")
	}
}
