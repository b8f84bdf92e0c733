package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mailvault/mailvault/internal/s3test"
)

func s3Config(srv *s3test.Server, prefix string) S3Config {
	return S3Config{Endpoint: srv.Endpoint, Bucket: "archive", Prefix: prefix, AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, PartSize: 5 << 20, Retries: 2, Timeout: 20 * time.Second}
}

func testKey(i int) string {
	h := sha256.Sum256([]byte(fmt.Sprint(i)))
	return hex.EncodeToString(h[:])
}

// TestS3Blobs runs the Blobs contract against a real S3 server: put, get
// back byte-exact, has, list below the prefix only, delete; a blob larger
// than a part goes up as a multipart upload; a wrong key is refused. Then
// the integrity checks on the same server.
func TestS3Blobs(t *testing.T) {
	srv := s3test.Start(t)
	t.Run("contract", func(t *testing.T) { testS3Contract(t, srv) })
	t.Run("integrity", func(t *testing.T) { testS3Integrity(t, srv) })
}

func testS3Contract(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, err := OpenS3Blobs(ctx, s3Config(srv, "t/one/"), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	other, err := OpenS3Blobs(ctx, s3Config(srv, "t/two/"), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Put(ctx, testKey(99), []byte("another tenant")); err != nil {
		t.Fatal(err)
	}

	want := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		data := make([]byte, 100+i*997)
		rand.Read(data)
		mu.Lock()
		want[testKey(i)] = data
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- b.Put(ctx, testKey(i), data)
		}()
	}
	big := make([]byte, 12<<20+12345) // three parts of 5 MiB
	rand.Read(big)
	want[testKey(1000)] = big
	if err := b.Put(ctx, testKey(1000), big); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for k, data := range want {
		got, err := b.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("blob %s: got %d bytes, want %d", k, len(got), len(data))
		}
	}
	// The large blob went up in parts: its ETag counts them.
	mc := rawClient(t, srv)
	st, err := mc.StatObject(ctx, "archive", "t/one/blobs/"+testKey(1000), minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(st.ETag, "-3") {
		t.Errorf("ETag %q of a 12 MiB object with 5 MiB parts: want a multipart ETag ending in -3", st.ETag)
	}

	var listed []string
	if err := b.List(ctx, func(k string) error { listed = append(listed, k); return nil }); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sort.Strings(listed)
	if strings.Join(listed, ",") != strings.Join(keys, ",") {
		t.Fatalf("listed %d keys, want %d (and none of the other prefix)", len(listed), len(keys))
	}
	if ok, err := b.Has(ctx, testKey(3)); err != nil || !ok {
		t.Fatalf("Has of a stored blob: %v %v", ok, err)
	}
	if err := b.Delete(ctx, testKey(3)); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, testKey(3)); err != nil {
		t.Fatalf("deleting a missing blob: %v", err)
	}
	if ok, err := b.Has(ctx, testKey(3)); err != nil || ok {
		t.Fatalf("Has of a deleted blob: %v %v", ok, err)
	}
	if _, err := b.Get(ctx, testKey(3)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a deleted blob: %v, want ErrNotFound", err)
	}
	if err := b.Put(ctx, "../../etc", []byte("x")); err == nil {
		t.Fatal("a key with a path in it was accepted")
	}
}

func rawClient(t testing.TB, srv *s3test.Server) *minio.Client {
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3test.AccessKey, s3test.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testS3Integrity: an object changed on the store behind the archive's
// back (other bytes under the recorded checksum, or no checksum) is
// reported as ErrChecksum, not handed out as good; wrong credentials are
// refused at open.
func testS3Integrity(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, err := OpenS3Blobs(ctx, s3Config(srv, "integrity/"), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("sealed bytes "), 1000)
	if err := b.Put(ctx, testKey(1), data); err != nil {
		t.Fatal(err)
	}
	mc := rawClient(t, srv)
	obj := "integrity/blobs/" + testKey(1)
	st, err := mc.StatObject(ctx, "archive", obj, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[500] ^= 1
	if _, err := mc.PutObject(ctx, "archive", obj, bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{UserMetadata: map[string]string{s3CRCMeta: st.UserMetadata[s3CRCMeta]}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, testKey(1)); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Get of altered bytes: %v, want ErrChecksum", err)
	}
	if _, err := mc.PutObject(ctx, "archive", obj, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, testKey(1)); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Get of an object without checksum: %v, want ErrChecksum", err)
	}
	cfg := s3Config(srv, "")
	cfg.SecretKey = "wrong"
	if _, err := OpenS3Blobs(ctx, cfg, slog.Default()); err == nil {
		t.Fatal("wrong secret key accepted")
	}
}

// TestS3BlobsOutage: with the server killed a Put fails after its retries
// (it does not hang, and does not report success); once the server is back
// the same store works again and what was acknowledged before is there.
func TestS3BlobsOutage(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	b, err := OpenS3Blobs(ctx, s3Config(srv, ""), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, testKey(1), []byte("before")); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	start := time.Now()
	if err := b.Put(ctx, testKey(2), []byte("during")); err == nil {
		t.Fatal("Put succeeded with the object store down")
	}
	if d := time.Since(start); d > 25*time.Second {
		t.Errorf("failing Put took %s, beyond its timeout", d)
	}
	srv.Restart()
	if err := b.Put(ctx, testKey(3), []byte("after")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{testKey(1), testKey(3)} {
		if _, err := b.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
}
