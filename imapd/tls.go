package imapd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/tlscert"
)

// loadTLS uses the configured pair, or else the server's self-signed pair
// in the data directory (shared with the SMTP endpoint).
func loadTLS(cfg conf.IMAP, dataDir string, log *slog.Logger) (*tls.Config, error) {
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("imap: set both cert_file and key_file, or neither")
	}
	if cfg.CertFile != "" {
		c, err := tlscert.LoadFiles(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("imap: %w", err)
		}
		return c, nil
	}
	dir := filepath.Join(dataDir, "tls")
	c, created, err := tlscert.Load(dir, "localhost")
	if err != nil {
		return nil, fmt.Errorf("imap: %w", err)
	}
	if created {
		log.Warn("created a self-signed certificate; configure imap.cert_file and imap.key_file for clients to trust the server", "dir", dir)
	}
	return c, nil
}
