package tests

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSelfSignedCertificateNames trusts the server's self-signed
// certificate, as the README says, and connects to implicit-TLS IMAP by
// 127.0.0.1, ::1, localhost and the configured hostname: each handshake
// verifies.
func TestSelfSignedCertificateNames(t *testing.T) {
	in := newInstance(t)
	imaps := freeAddr(t)
	_, port, _ := net.SplitHostPort(imaps)
	in.env = append(in.env, "MAILVAULT_IMAP_LISTEN_TLS=[::]:"+port, "MAILVAULT_SMTP_HOSTNAME=archive.acme.example")
	in.start()
	// The certificate as the server presents it, and as the file the
	// README tells clients to trust.
	// The API answers before every listener is bound: wait for this one.
	var probe *tls.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		probe, err = tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{InsecureSkipVerify: true})
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	presented := probe.ConnectionState().PeerCertificates[0]
	probe.Close()
	pemBytes, err := os.ReadFile(filepath.Join(in.dataDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("cert.pem holds no certificate")
	}
	if b, _ := pem.Decode(pemBytes); b == nil || !bytes.Equal(b.Bytes, presented.Raw) {
		t.Fatal("the server presents another certificate than tls/cert.pem")
	}
	for _, c := range []struct{ dial, name string }{
		{"127.0.0.1", "127.0.0.1"}, {"::1", "::1"}, {"127.0.0.1", "localhost"}, {"127.0.0.1", "archive.acme.example"},
	} {
		d := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(c.dial, port), &tls.Config{RootCAs: roots, ServerName: c.name})
		if err != nil {
			t.Errorf("TLS to %s as %s: %v", c.dial, c.name, err)
			continue
		}
		conn.Close()
	}
}
