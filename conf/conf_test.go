package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestLoadLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mv.toml")
	os.WriteFile(file, []byte("data_dir = \"/srv/mv\"\n[imap]\nlisten = \"0.0.0.0:143\"\n[smtp]\nread_timeout = \"5m\"\n"), 0o600)
	c, err := Load(file, []string{"MAILVAULT_IMAP_LISTEN=127.0.0.2:1143", "MAILVAULT_STORE_COMMIT_DELAY=5ms", "HOME=/x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/srv/mv" || c.IMAP.Listen != "127.0.0.2:1143" || c.SMTP.ReadTimeout.Duration != 5*time.Minute ||
		c.Store.CommitDelay.Duration != 5*time.Millisecond || c.HTTP.Listen != Default().HTTP.Listen {
		t.Fatalf("layers not applied in order default < file < environment: %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[imap]\nlisten_typo = \"x\"\n"), 0o600)
	if _, err := Load(bad, nil); err == nil || !strings.Contains(err.Error(), "listen_typo") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := Load("", []string{"MAILVAULT_SMTP_MAX_MESSAGE_BYTES=lots"}); err == nil || !strings.Contains(err.Error(), "MAILVAULT_SMTP_MAX_MESSAGE_BYTES") {
		t.Fatalf("bad environment value: %v", err)
	}
	if _, err := Load("", []string{"MAILVAULT_LOG_LEVEL=loud"}); err == nil {
		t.Fatal("bad log level accepted")
	}
	if _, err := Load("", []string{"MAILVAULT_IMAP_LISTN=x", "MAILVAULT_TOKEN=t"}); err == nil || !strings.Contains(err.Error(), "MAILVAULT_IMAP_LISTN") || strings.Contains(err.Error(), "TOKEN") {
		t.Fatalf("misspelt environment variable: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml"), nil); err == nil {
		t.Fatal("missing file accepted")
	}
}

// TestExampleIsDefault keeps the commented example in step with the
// defaults: it must parse, know every key, and say the default values.
func TestExampleIsDefault(t *testing.T) {
	var c Config
	md, err := toml.Decode(Example(), &c)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Undecoded()) != 0 {
		t.Fatalf("example has unknown keys %v", md.Undecoded())
	}
	if c != Default() {
		t.Fatalf("example differs from the defaults:\n%+v\n%+v", c, Default())
	}
}

// TestProductionExample keeps docs/mailvault.example.toml loadable: every
// key known, every value valid.
func TestProductionExample(t *testing.T) {
	c, err := Load("../docs/mailvault.example.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/mailvault" || c.HTTP.MetricsListen == "" || c.LogFormat != "json" {
		t.Fatalf("example not read as written: %+v", c)
	}
}
