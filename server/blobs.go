package server

import (
	"fmt"
	"os"
	"strings"

	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/store"
)

// S3Options reads store.blobs and [store.s3]: nil for pack files, else the
// object store every tenant's blobs go to. A secret key from
// secret_key_file is read here, once, at start.
func S3Options(st conf.Store) (*store.S3Config, error) {
	if st.Blobs != "s3" {
		return nil, nil
	}
	c := st.S3
	secret := c.SecretKey
	if secret == "" && c.SecretKeyFile != "" {
		b, err := os.ReadFile(c.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.s3.secret_key_file: %w", err)
		}
		secret, _, _ = strings.Cut(string(b), "\n")
		secret = strings.TrimSpace(secret)
	}
	return &store.S3Config{
		Endpoint: c.Endpoint, Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region,
		AccessKey: c.AccessKey, SecretKey: secret, TLS: c.TLS, CAFile: c.CAFile,
		PartSize: c.PartSize, Retries: c.Retries, Timeout: c.Timeout.Duration,
	}, nil
}
