// Package s3test runs a real S3 server for tests: SeaweedFS's `weed`,
// built from its Go module once and kept in the user's cache directory,
// started on loopback ports with a data directory of the test's.
package s3test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Version is the SeaweedFS module version the tests run.
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// Keys the server accepts (and the only ones).
const (
	AccessKey = "mailvault-test"
	SecretKey = "mailvault-test-secret-key"
)

// BinaryPath is where the built weed is kept.
func BinaryPath() (string, error) {
	if p := os.Getenv("WEED_BINARY"); p != "" {
		return p, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "mailvault", "seaweedfs-"+Version, "weed"), nil
}

// Build makes sure the weed binary exists, building it from the module
// (several minutes the first time) under a lock, so that test binaries
// started together build it once.
func Build(ctx context.Context) (string, error) {
	bin, err := BinaryPath()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(bin+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built while we waited
	}
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", "github.com/seaweedfs/seaweedfs@"+Version).Output()
	if err != nil {
		return "", fmt.Errorf("download seaweedfs %s: %w", Version, err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("download seaweedfs %s: %s %v", Version, mod.Error, err)
	}
	tmp := bin + ".tmp"
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp, ".")
	build.Dir = filepath.Join(mod.Dir, "weed")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build weed: %w\n%s", err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// Server is one weed server (master, volume, filer and S3 gateway in one
// process) on loopback.
type Server struct {
	Endpoint string // host:port of the S3 API
	t        testing.TB
	bin      string
	args     []string
	mu       sync.Mutex
	cmd      *exec.Cmd
	log      *syncBuffer
	exited   chan struct{}
}

// syncBuffer is written by the process's output copiers while Logs reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var buildOnce = sync.OnceValues(func() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	return Build(ctx)
})

// Start builds weed if needed and starts it; the test is skipped only when
// weed cannot be built here (no Go module proxy, say).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Skipf("no SeaweedFS server for the S3 tests: %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "s3.json")
	ident := fmt.Sprintf(`{"identities":[{"name":"mailvault","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`, AccessKey, SecretKey)
	if err := os.WriteFile(cfg, []byte(ident), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 8)
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	s := &Server{Endpoint: "127.0.0.1:" + p(0), t: t, bin: bin, args: []string{
		"server", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + p(1), "-master.port.grpc=" + p(2),
		"-volume.port=" + p(3), "-volume.port.grpc=" + p(4),
		"-filer.port=" + p(5), "-filer.port.grpc=" + p(6),
		"-s3", "-s3.port=" + p(0), "-s3.port.grpc=" + p(7), "-s3.config=" + cfg,
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-master.volumeSizeLimitMB=64", "-volume.max=50",
	}}
	t.Cleanup(s.Kill)
	s.Restart()
	return s
}

func freePorts(t testing.TB, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Restart starts the server (again, on the same ports and data) and waits
// until its S3 API accepts a write.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	s.log = &syncBuffer{}
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.exited = make(chan struct{})
	if err := s.cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatal(err)
	}
	cmd, exited := s.cmd, s.exited
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if err := s.ready(); err == nil {
			return
		}
		select {
		case <-exited:
			s.t.Fatalf("weed exited at start:\n%s", s.Logs())
		case <-time.After(200 * time.Millisecond):
		}
	}
	s.t.Fatalf("weed did not become ready:\n%s", s.Logs())
}

// ready reports whether the server stores an object: its S3 gateway
// answers well before writes go through (after a restart the filer's lock
// ring takes about ten seconds to form).
func (s *Server) ready() error {
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), MaxRetries: 1})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if ok, err := c.BucketExists(ctx, probeBucket); err != nil {
		return err
	} else if !ok {
		if err := c.MakeBucket(ctx, probeBucket, minio.MakeBucketOptions{}); err != nil {
			return err
		}
	}
	_, err = c.PutObject(ctx, probeBucket, "probe", strings.NewReader("ready"), 5, minio.PutObjectOptions{})
	return err
}

// probeBucket is where readiness is probed, apart from the tests' buckets.
const probeBucket = "readiness-probe"

// Kill ends the server with SIGKILL, as a crash or a pulled plug would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Logs returns what the server printed since its last start.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}
