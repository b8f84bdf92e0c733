package tests

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mailvault/mailvault/internal/s3test"
)

// s3Instance is an instance whose blobs are on srv, bucket "archive",
// with the secret key read from a file.
func s3Instance(t *testing.T, srv *s3test.Server) *instance {
	in := newInstance(t)
	keyFile := filepath.Join(t.TempDir(), "s3-secret")
	if err := os.WriteFile(keyFile, []byte(s3test.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in.env = append(in.env,
		"MAILVAULT_STORE_BLOBS=s3",
		"MAILVAULT_STORE_S3_ENDPOINT="+srv.Endpoint,
		"MAILVAULT_STORE_S3_BUCKET=archive",
		"MAILVAULT_STORE_S3_ACCESS_KEY="+s3test.AccessKey,
		"MAILVAULT_STORE_S3_SECRET_KEY_FILE="+keyFile,
		"MAILVAULT_STORE_S3_PART_SIZE=5242880",
		"MAILVAULT_STORE_S3_RETRIES=2",
		"MAILVAULT_STORE_S3_TIMEOUT=10s",
	)
	return in
}

func s3Objects(t *testing.T, srv *s3test.Server, prefix string) []minio.ObjectInfo {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3test.AccessKey, s3test.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	var out []minio.ObjectInfo
	for o := range c.ListObjects(context.Background(), "archive", minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out = append(out, o)
	}
	return out
}

func s3Object(t *testing.T, srv *s3test.Server, name string) []byte {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3test.AccessKey, s3test.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.GetObject(context.Background(), "archive", name, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inboxDigests reads alice's INBOX over IMAP (python3 imaplib) and returns
// the SHA-256 of every message's bytes, sorted.
func inboxDigests(in *instance) []string {
	var got []string
	in.imaplib("alice@acme.example", "alice-secret", `
import hashlib
M.select('INBOX', True)
typ, data = M.uid('FETCH', '1:*', '(BODY.PEEK[])')
print(json.dumps(sorted(hashlib.sha256(d[1]).hexdigest() for d in data if isinstance(d, tuple))))
`, &got)
	return got
}

func digest(msg string) string {
	h := sha256.Sum256([]byte(msg))
	return hex.EncodeToString(h[:])
}

func s3Message(n int, body string) string {
	return fmt.Sprintf("From: Bob <bob@partner.example>\r\nTo: Alice <alice@acme.example>\r\nSubject: Quarterly figures %d\r\nMessage-Id: <q%d@partner.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n%s\r\n", n, n, body)
}

// TestS3Journal journals mail over SMTP into an instance whose blobs are on
// a real S3 server (SeaweedFS): IMAP reads every message back byte-exact,
// verify is clean, the bucket holds one sealed object per message under
// the tenant's prefix (a large one sent as a multipart upload) and no
// plaintext, and the data directory holds no blobs.
func TestS3Journal(t *testing.T) {
	srv := s3test.Start(t)
	in := s3Instance(t, srv)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("journal", "allow", "-tenant", "acme", "127.0.0.1/32")

	var sent []string
	for i := range 20 {
		sent = append(sent, s3Message(i, fmt.Sprintf("Revenue for region %d rose by %d percent.", i, i*3)))
	}
	// About 6 MB once compressed: more than one 5 MiB part.
	random := make([]byte, 6<<20)
	rand.Read(random)
	var att strings.Builder
	for enc := base64.StdEncoding.EncodeToString(random); len(enc) > 0; enc = enc[min(76, len(enc)):] {
		att.WriteString(enc[:min(76, len(enc))] + "\r\n")
	}
	sent = append(sent, s3Message(100, "The scans are attached.\r\n\r\n"+att.String()))
	for _, msg := range sent {
		if err := sendPlain(in.SMTP, "journal@exchange.acme.example", "journal@acme.example", msg); err != nil {
			t.Fatalf("SMTP delivery: %v", err)
		}
	}

	want := make([]string, 0, len(sent))
	for _, m := range sent {
		want = append(want, digest(m))
	}
	slices.Sort(want)
	if got := inboxDigests(in); !slices.Equal(got, want) {
		t.Fatalf("IMAP returned %d messages that do not match the %d sent byte for byte", len(got), len(want))
	}
	if out := in.mustCLI("verify", "-tenant", "acme"); !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify:\n%s", out)
	}

	objs := s3Objects(t, srv, "mailvault/acme/blobs/")
	if len(objs) != len(sent) {
		t.Fatalf("bucket holds %d objects under the tenant's prefix, want one per message (%d)", len(objs), len(sent))
	}
	multipart := 0
	for _, o := range objs {
		if strings.Contains(o.ETag, "-") {
			multipart++
		}
		if o.Size < 5<<20 {
			if b := s3Object(t, srv, o.Key); strings.Contains(string(b), "Revenue") || strings.Contains(string(b), "alice@acme.example") {
				t.Fatalf("object %s holds plaintext", o.Key)
			}
		}
	}
	if multipart != 1 {
		t.Errorf("%d multipart objects, want 1 (the large message)", multipart)
	}
	packs, _ := filepath.Glob(filepath.Join(in.dataDir, "tenants", "acme", "packs", "*.pack"))
	if len(packs) > 0 {
		t.Errorf("pack files in the data directory with blobs on S3: %v", packs)
	}
}

// TestS3Outage kills the object store while journal mail floods in: SMTP
// answers 4xx (never 5xx, never 250 for a message it could not store),
// intake resumes once the store is back, and every message acknowledged
// with 250, before, during or after the outage, reads back byte-exact.
func TestS3Outage(t *testing.T) {
	srv := s3test.Start(t)
	in := s3Instance(t, srv)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("journal", "allow", "-tenant", "acme", "127.0.0.1/32")

	var (
		mu                 sync.Mutex
		acked              []string
		ackedAfter, failed int
		phase              int // 0 up, 1 down, 2 back
		next               int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				n := next
				next++
				mu.Unlock()
				msg := s3Message(n, fmt.Sprintf("Flood message %d.", n))
				err := sendPlain(in.SMTP, "journal@exchange.acme.example", "journal@acme.example", msg)
				mu.Lock()
				var te *textproto.Error
				switch {
				case err == nil:
					acked = append(acked, msg)
					if phase == 2 {
						ackedAfter++
					}
				case errors.As(err, &te) && te.Code >= 400 && te.Code < 500:
					if phase == 1 {
						failed++
					}
				default:
					t.Errorf("message %d: %v (want 250 or a 4xx reply)", n, err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond) // a sender backs off
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		t.Fatalf("timed out waiting for %s:\n%s", what, in.logs())
	}
	waitFor("messages acknowledged with the store up", func() bool { return len(acked) >= 30 })
	srv.Kill()
	mu.Lock()
	phase = 1
	mu.Unlock()
	waitFor("4xx replies with the store down", func() bool { return failed >= 8 })
	srv.Restart()
	mu.Lock()
	phase = 2
	mu.Unlock()
	waitFor("intake to resume", func() bool { return ackedAfter >= 30 })
	close(stop)
	wg.Wait()

	want := make([]string, 0, len(acked))
	for _, m := range acked {
		want = append(want, digest(m))
	}
	slices.Sort(want)
	got := inboxDigests(in)
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			t.Fatalf("an acknowledged message is missing: %d acknowledged, %d in the archive", len(want), len(got))
		}
	}
	if out := in.mustCLI("verify", "-tenant", "acme"); !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify after the outage:\n%s", out)
	}
	t.Logf("%d acknowledged (%d after the outage), %d answered 4xx during it", len(acked), ackedAfter, failed)
}
