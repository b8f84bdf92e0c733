package tlscert

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := Load(dir, "archive.test")
	if err != nil {
		t.Fatal(err)
	}
	first, err := cfg.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A second start uses the same pair.
	cfg2, _, err := Load(dir, "archive.test")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := cfg2.GetCertificate(nil); string(again.Certificate[0]) != string(first.Certificate[0]) {
		t.Fatal("second start made a new certificate")
	}
	// The operator installs another pair: the next handshake uses it.
	other := t.TempDir()
	if _, _, err := Load(other, "mail.example"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CertFileName, KeyFileName} {
		b, _ := os.ReadFile(filepath.Join(other, f))
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
		later := time.Now().Add(time.Second)
		os.Chtimes(filepath.Join(dir, f), later, later)
	}
	now, err := cfg.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(now.Certificate[0]) == string(first.Certificate[0]) {
		t.Error("replaced certificate not picked up")
	}
	// Only one of the pair present is an error, not a silent new pair.
	os.Remove(filepath.Join(other, KeyFileName))
	if _, _, err := Load(other, "mail.example"); err == nil {
		t.Error("certificate without key accepted")
	}
}
