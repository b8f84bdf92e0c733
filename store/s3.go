package store

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates a tenant's blobs on an S3-compatible object store.
type S3Config struct {
	Endpoint string // host:port
	Bucket   string
	// Prefix starts every object name; a tenant's blobs are at
	// Prefix + "blobs/" + key.
	Prefix    string
	Region    string
	AccessKey string
	SecretKey string
	TLS       bool
	// CAFile holds PEM certificates the endpoint's must chain to; empty:
	// the system's.
	CAFile string
	// PartSize is the size of a multipart upload's parts; an object larger
	// than one part is sent in parts (at least 5 MiB; 0: 16 MiB).
	PartSize int64
	// Retries is how often a failed request is tried again, with
	// exponential backoff and jitter (0: 5).
	Retries int
	// Timeout bounds one operation with all its retries (0: 2 minutes).
	Timeout time.Duration
}

// S3Blobs keeps each blob as one object. A Put returns once the object
// store has acknowledged the whole object, so Sync has nothing left to do;
// concurrent Puts (one per message being ingested) go out in parallel.
//
// The blobs are sealed before they are sent: the store sees keyed hashes
// and ciphertext, and server-side encryption adds nothing that is relied on.
// Each object carries the CRC-32C of its bytes in its metadata, which Get
// checks together with the length, as the pack store checks its records.
type S3Blobs struct {
	c        *minio.Client
	bucket   string
	prefix   string // up to and including "blobs/"
	partSize uint64
	timeout  time.Duration
	tr       *http.Transport
	log      *slog.Logger
}

// s3CRCMeta is the user metadata key of an object's CRC-32C (hex). S3
// returns it as X-Amz-Meta-Mv-Crc32c.
const s3CRCMeta = "Mv-Crc32c"

// OpenS3Blobs connects to the object store and makes sure the bucket
// exists (creating it if it does not).
func OpenS3Blobs(ctx context.Context, cfg S3Config, log *slog.Logger) (*S3Blobs, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3 blobs: endpoint and bucket are required")
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = 16 << 20
	}
	if cfg.PartSize < 5<<20 {
		return nil, fmt.Errorf("s3 blobs: part size %d is below the 5 MiB S3 requires", cfg.PartSize)
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 5
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	tr, err := minio.DefaultTransport(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("s3 blobs: %w", err)
	}
	if cfg.TLS && cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3 blobs: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3 blobs: no certificate in %s", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	// Ingest runs many Puts at once; keep their connections.
	tr.MaxIdleConnsPerHost = 256
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.TLS,
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: cfg.Retries + 1, // the client counts the first try
	})
	if err != nil {
		return nil, fmt.Errorf("s3 blobs: %w", err)
	}
	b := &S3Blobs{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix + "blobs/", partSize: uint64(cfg.PartSize), timeout: cfg.Timeout, tr: tr, log: log}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 blobs: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			// Another node may have made it meanwhile.
			if ok, e2 := c.BucketExists(ctx, cfg.Bucket); e2 != nil || !ok {
				return nil, fmt.Errorf("s3 blobs: create bucket %s: %w", cfg.Bucket, err)
			}
		}
		log.Info("created object store bucket", "endpoint", cfg.Endpoint, "bucket", cfg.Bucket)
	}
	return b, nil
}

func (b *S3Blobs) object(key string) (string, error) {
	if len(key) < 8 || strings.ContainsAny(key, `/\.`) {
		return "", fmt.Errorf("invalid blob key %q", key)
	}
	return b.prefix + key, nil
}

func (b *S3Blobs) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.timeout)
}

// Put uploads the blob, in parts when it is larger than one part, and
// returns when the store has acknowledged it. The MD5 the store checks on
// receipt guards the transfer; the CRC in the metadata guards later reads.
func (b *S3Blobs) Put(ctx context.Context, key string, data []byte) error {
	name, err := b.object(key)
	if err != nil {
		return err
	}
	ctx, cancel := b.op(ctx)
	defer cancel()
	crc := crc32.Checksum(data, castagnoli)
	info, err := b.c.PutObject(ctx, b.bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:    "application/octet-stream",
		UserMetadata:   map[string]string{s3CRCMeta: strconv.FormatUint(uint64(crc), 16)},
		SendContentMd5: true,
		PartSize:       b.partSize,
	})
	if err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	if info.Size != int64(len(data)) {
		return fmt.Errorf("put blob %s: object store stored %d of %d bytes", key, info.Size, len(data))
	}
	return nil
}

// Get downloads a blob and checks its length and CRC against what Put
// recorded. On a mismatch it returns the bytes with an error that is
// ErrChecksum: authenticating the sealed bytes tells whether they are whole.
func (b *S3Blobs) Get(ctx context.Context, key string) ([]byte, error) {
	name, err := b.object(key)
	if err != nil {
		return nil, err
	}
	ctx, cancel := b.op(ctx)
	defer cancel()
	obj, err := b.c.GetObject(ctx, b.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", key, s3Err(err))
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", key, s3Err(err))
	}
	if st.Size < 0 || st.Size >= 1<<32 {
		return nil, fmt.Errorf("get blob %s: object size %d: %w", key, st.Size, ErrCorrupt)
	}
	data := make([]byte, st.Size)
	if _, err := io.ReadFull(obj, data); err != nil {
		return nil, fmt.Errorf("get blob %s: %w", key, s3Err(err))
	}
	var extra [1]byte
	if n, _ := obj.Read(extra[:]); n > 0 {
		return data, fmt.Errorf("get blob %s: longer than its stated size: %w", key, ErrChecksum)
	}
	want, ok := metaCRC(st.UserMetadata)
	if !ok {
		return data, fmt.Errorf("get blob %s: object has no checksum: %w", key, ErrChecksum)
	}
	if crc32.Checksum(data, castagnoli) != want {
		return data, fmt.Errorf("get blob %s: %w", key, ErrChecksum)
	}
	return data, nil
}

func metaCRC(m minio.StringMap) (uint32, bool) {
	for k, v := range m {
		if strings.EqualFold(k, s3CRCMeta) {
			n, err := strconv.ParseUint(v, 16, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
}

// s3Err maps a missing object to ErrNotFound.
func s3Err(err error) error {
	if r := minio.ToErrorResponse(err); r.Code == minio.NoSuchKey || r.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w (%s)", ErrNotFound, r.Message)
	}
	return err
}

// Has reports whether a blob exists.
func (b *S3Blobs) Has(ctx context.Context, key string) (bool, error) {
	name, err := b.object(key)
	if err != nil {
		return false, err
	}
	ctx, cancel := b.op(ctx)
	defer cancel()
	_, err = b.c.StatObject(ctx, b.bucket, name, minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	if errors.Is(s3Err(err), ErrNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("stat blob %s: %w", key, err)
}

// Delete removes a blob; a missing blob is not an error. A bucket that
// keeps versions keeps the old ciphertext too, so a deleted message is
// gone from the store only once those versions expire
// (docs/operations.md).
func (b *S3Blobs) Delete(ctx context.Context, key string) error {
	name, err := b.object(key)
	if err != nil {
		return err
	}
	ctx, cancel := b.op(ctx)
	defer cancel()
	if err := b.c.RemoveObject(ctx, b.bucket, name, minio.RemoveObjectOptions{}); err != nil && !errors.Is(s3Err(err), ErrNotFound) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// List calls fn for every key below the tenant's prefix.
func (b *S3Blobs) List(ctx context.Context, fn func(key string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing when fn fails
	for o := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("list blobs: %w", o.Err)
		}
		key := strings.TrimPrefix(o.Key, b.prefix)
		if _, err := hex.DecodeString(key); err != nil || len(key) < 8 {
			continue // not a blob of ours
		}
		if err := fn(key); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Sync has nothing to flush: every Put that returned is acknowledged.
func (b *S3Blobs) Sync(ctx context.Context) error { return nil }

// Close drops the idle connections.
func (b *S3Blobs) Close() error {
	b.tr.CloseIdleConnections()
	return nil
}
