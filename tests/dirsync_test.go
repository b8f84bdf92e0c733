package tests

import (
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestDirsyncSaveDoesNotSync saves a profile with an interval through the
// CLI and checks that the server does not contact the directory: saving
// must not sync before the operator has looked at a dry run.
func TestDirsyncSaveDoesNotSync(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var contacted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			contacted.Add(1)
			c.Close()
		}
	}()
	prof := filepath.Join(t.TempDir(), "corp.json")
	os.WriteFile(prof, []byte(`{"url": "ldap://`+ln.Addr().String()+`", "bind_dn": "cn=mailvault,dc=acme,dc=example",
		"bind_password": "secret", "base_dn": "dc=acme,dc=example", "preset": "openldap",
		"domains": ["acme.example"], "interval": "15m"}`), 0o644)
	in.mustCLI("dirsync", "put", "-tenant", "acme", "corp", "-file", prof)
	// The scheduler wakes on a saved profile at once; give it time to
	// (wrongly) dial.
	time.Sleep(2 * time.Second)
	if n := contacted.Load(); n != 0 {
		t.Fatalf("saving the profile contacted the directory %d times", n)
	}
	// A dry run on demand does contact it (and fails: nothing answers LDAP).
	out, _ := in.cli("dirsync", "run", "-tenant", "acme", "-profile", "corp", "-dry-run")
	if contacted.Load() == 0 {
		t.Fatalf("dry run did not contact the directory:\n%s", out)
	}
}
