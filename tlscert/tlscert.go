package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailvault/mailvault/store"
)

// Certificate file names inside the TLS directory.
const (
	CertFileName = "cert.pem"
	KeyFileName  = "key.pem"
)

// Load returns a TLS configuration with the certificate and key in dir,
// which an operator may replace with a real pair, or else a self-signed
// pair for hostname that is created there on first start (created says
// so). A replaced or renewed pair is picked up at the next handshake,
// without a restart.
func Load(dir, hostname string) (cfg *tls.Config, created bool, err error) {
	certFile, keyFile := filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
	_, cerr := os.Stat(certFile)
	_, kerr := os.Stat(keyFile)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		if err := createSelfSigned(certFile, keyFile, hostname); err != nil {
			return nil, false, err
		}
		created = true
	case cerr != nil || kerr != nil:
		return nil, false, fmt.Errorf("tls certificate: need both %s and %s: %w", certFile, keyFile, errors.Join(cerr, kerr))
	}
	cfg, err = LoadFiles(certFile, keyFile)
	return cfg, created, err
}

// LoadFiles returns a TLS configuration for a configured certificate and
// key, re-read when the files change.
func LoadFiles(certFile, keyFile string) (*tls.Config, error) {
	l := &certLoader{certFile: certFile, keyFile: keyFile}
	if _, err := l.get(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return l.get() },
	}, nil
}

// certLoader re-reads the pair when a file changes.
type certLoader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

func (l *certLoader) get() (*tls.Certificate, error) {
	ci, err1 := os.Stat(l.certFile)
	ki, err2 := os.Stat(l.keyFile)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := errors.Join(err1, err2); err != nil {
		if l.cert != nil {
			return l.cert, nil // keep serving while the files are being replaced
		}
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	mod := ci.ModTime()
	if ki.ModTime().After(mod) {
		mod = ki.ModTime()
	}
	if l.cert != nil && mod.Equal(l.modTime) {
		return l.cert, nil
	}
	c, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if err != nil {
		if l.cert != nil {
			return l.cert, nil // a half-replaced pair: keep the old one until both match
		}
		return nil, fmt.Errorf("tls certificate %s: %w", l.certFile, err)
	}
	l.cert, l.modTime = &c, mod
	return l.cert, nil
}

func createSelfSigned(certFile, keyFile, hostname string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("tls serial: %w", err)
	}
	if hostname == "" {
		hostname = "localhost"
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hostname, Organization: []string{"mailvault self-signed"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	// Clients check the name they dialled: the configured hostname, and
	// the loopback names a first test on the machine itself uses.
	tmpl.DNSNames = []string{"localhost"}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ip := net.ParseIP(hostname); ip != nil {
		if !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	} else if !strings.EqualFold(hostname, "localhost") {
		tmpl.DNSNames = append(tmpl.DNSNames, hostname)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("tls directory: %w", err)
	}
	// Key first: a crash in between leaves a key without certificate, which
	// the next start reports instead of pairing a new cert with no key.
	if err := store.WriteFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("write tls key: %w", err)
	}
	if err := store.WriteFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write tls certificate: %w", err)
	}
	return nil
}
