package dirsync

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The tests run a real OpenLDAP slapd (Debian's slapd package) as a child
// process on a loopback port with a private configuration: an AD-like
// schema (testdata/ad-lite.schema), memberOf computed by the dynlist
// overlay, member values kept up to date by refint, and AD's page size
// limit of 1000 for the service account.

const (
	testSuffix  = "dc=acme,dc=example"
	testAdminDN = "cn=admin," + testSuffix
	testAdminPW = "admin secret"
	testSvcDN   = "cn=svc-archive,ou=service," + testSuffix
	testSvcPW   = "service account password"
)

// slapd is a running test directory server.
type slapd struct {
	t        testing.TB
	dir      string
	conf     string
	addr     string // host:port of ldap://
	tlsAddr  string // host:port of ldaps://, if TLS is on
	caFile   string
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	logFile  *os.File
	withTLS  bool
	slapdBin string
}

func findSbin(t testing.TB, name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not installed: scripts/test installs the Debian packages slapd and ldap-utils", name)
	}
	return p
}

// freePorts returns n distinct loopback addresses that were free a moment
// ago; their probes are open together so that the kernel cannot offer one
// port twice.
func freePorts(t testing.TB, n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// startSlapd loads ldif offline into a fresh database and starts slapd.
func startSlapd(t testing.TB, ldif []byte, withTLS bool) *slapd {
	t.Helper()
	s := &slapd{t: t, dir: t.TempDir(), withTLS: withTLS, slapdBin: findSbin(t, "slapd")}
	schema, err := os.ReadFile(filepath.Join("testdata", "ad-lite.schema"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(s.dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("ad-lite.schema", schema)
	if err := os.Mkdir(filepath.Join(s.dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	var tlsConf string
	if withTLS {
		ca, cert, key := testCertificates(t)
		s.caFile = write("ca.pem", ca)
		tlsConf = fmt.Sprintf("TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n",
			s.caFile, write("server.pem", cert), write("server.key", key))
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/dyngroup.schema
include %[1]s/ad-lite.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload dynlist
moduleload refint
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
%[2]s
# Like Active Directory's MaxPageSize: an unpaged search returns at most
# 1000 entries, paged searches any number.
sizelimit size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited
database mdb
maxsize 1073741824
suffix "%[3]s"
rootdn "%[4]s"
rootpw "%[5]s"
directory %[1]s/db
index objectClass,mail,proxyAddresses,userPrincipalName,uid,cn eq
index member,memberUid eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
overlay dynlist
dynlist-attrset groupOfURLs memberURL member+memberOf@groupOfNames
# Like AD's linked attributes: renaming or deleting a user updates the
# member values that name them.
overlay refint
refint_attributes member
`, s.dir, tlsConf, testSuffix, testAdminDN, testAdminPW)
	s.conf = write("slapd.conf", []byte(conf))
	data := write("data.ldif", ldif)
	out, err := exec.Command(findSbin(t, "slapadd"), "-q", "-f", s.conf, "-l", data).CombinedOutput()
	if err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	ports := freePorts(t, 2)
	s.addr = ports[0]
	if withTLS {
		s.tlsAddr = ports[1]
	}
	if s.logFile, err = os.Create(filepath.Join(s.dir, "slapd.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop()
		s.logFile.Close()
	})
	s.start()
	return s
}

// start runs slapd in the foreground (-d) so that it dies with its PID.
func (s *slapd) start() {
	s.t.Helper()
	urls := "ldap://" + s.addr + "/"
	if s.withTLS {
		urls += " ldaps://" + s.tlsAddr + "/"
	}
	cmd := exec.Command(s.slapdBin, "-f", s.conf, "-h", urls, "-d", "0")
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start slapd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if l, err := ldap.DialURL("ldap://"+s.addr, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second})); err == nil {
			err = l.Bind(testAdminDN, testAdminPW)
			l.Close()
			if err == nil {
				return
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(s.logFile.Name())
			s.t.Fatalf("slapd exited at start:\n%s", log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatal("slapd did not answer within 15s")
		}
	}
}

// stop kills slapd (SIGKILL: a crash, not a shutdown) and waits for it.
func (s *slapd) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

func (s *slapd) url() string { return "ldap://" + s.addr }

// admin returns a connection bound as the directory's root, for changing
// the directory the way an administrator would.
func (s *slapd) admin() *ldap.Conn {
	s.t.Helper()
	l, err := ldap.DialURL(s.url())
	if err != nil {
		s.t.Fatal(err)
	}
	if err := l.Bind(testAdminDN, testAdminPW); err != nil {
		s.t.Fatal(err)
	}
	return l
}

// ssha hashes a password as slappasswd does ({SSHA}: SHA-1 over password
// and salt, salt appended).
func ssha(pw string) string {
	salt := make([]byte, 8)
	rand.Read(salt)
	h := sha1.New()
	h.Write([]byte(pw))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

// ldifEntry writes one entry; values with a leading "::" are base64-encoded
// binary values.
type ldifEntry struct {
	dn    string
	attrs [][2]string
}

func (e *ldifEntry) add(name string, values ...string) {
	for _, v := range values {
		e.attrs = append(e.attrs, [2]string{name, v})
	}
}

func (e *ldifEntry) write(b *bytes.Buffer) {
	fmt.Fprintf(b, "dn: %s\n", e.dn)
	for _, a := range e.attrs {
		if bin, ok := strings.CutPrefix(a[1], "::"); ok {
			fmt.Fprintf(b, "%s:: %s\n", a[0], bin)
		} else if strings.ContainsAny(a[1], "\n\r\x00") || strings.HasPrefix(a[1], " ") || strings.HasPrefix(a[1], ":") || strings.HasPrefix(a[1], "<") {
			fmt.Fprintf(b, "%s:: %s\n", a[0], base64.StdEncoding.EncodeToString([]byte(a[1])))
		} else {
			fmt.Fprintf(b, "%s: %s\n", a[0], a[1])
		}
	}
	b.WriteByte('\n')
}

// baseLDIF is the tree every test directory starts with, including the
// service account the sync binds as.
func baseLDIF(b *bytes.Buffer, ous ...string) {
	root := ldifEntry{dn: testSuffix}
	root.add("objectClass", "dcObject", "organization")
	root.add("o", "ACME")
	root.add("dc", "acme")
	root.write(b)
	for _, ou := range append([]string{"ou=service", "ou=people", "ou=groups"}, ous...) {
		e := ldifEntry{dn: ou + "," + testSuffix}
		e.add("objectClass", "organizationalUnit")
		e.add("ou", strings.TrimPrefix(strings.SplitN(ou, ",", 2)[0], "ou="))
		e.write(b)
	}
	svc := ldifEntry{dn: testSvcDN}
	svc.add("objectClass", "person")
	svc.add("cn", "svc-archive")
	svc.add("sn", "Service")
	svc.add("userPassword", ssha(testSvcPW))
	svc.write(b)
}

// testCertificates makes a CA and a server certificate for 127.0.0.1.
func testCertificates(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailvault test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// cutProxy forwards TCP to the directory and, once it has passed limit
// bytes from the server, calls cut (which kills the server) and drops every
// connection: the directory goes away in the middle of a read.
type cutProxy struct {
	ln     net.Listener
	target string
	limit  int64
	cut    func()

	mu    sync.Mutex
	sent  int64
	done  bool
	conns []net.Conn
}

func newCutProxy(t testing.TB, target string, limit int64, cut func()) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, limit: limit, cut: cut}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go p.accept()
	return p
}

func (p *cutProxy) url() string { return "ldap://" + p.ln.Addr().String() }

func (p *cutProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go p.fromServer(c, s)
	}
}

func (p *cutProxy) fromServer(c, s net.Conn) {
	buf := make([]byte, 16<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.sent += int64(n)
			trip := !p.done && p.sent >= p.limit
			if trip {
				p.done = true
			}
			p.mu.Unlock()
			if trip {
				p.cut()
				p.closeAll()
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			c.Close()
			return
		}
	}
}

func (p *cutProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) tripped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// ctx returns a context for one test step.
func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
