package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// KeySize is the size of master and data keys (AES-256).
const KeySize = 32

// sealed blob layout: magic "MV1" | flags byte | 12-byte nonce | AES-GCM(ciphertext+tag).
// flags bit 0: the plaintext was zstd-compressed before encryption.
const (
	sealMagic      = "MV1"
	sealHeaderSize = len(sealMagic) + 1 + 12
	flagZstd       = 1
)

// ErrCorrupt is returned when sealed data fails authentication or decoding.
var ErrCorrupt = errors.New("sealed data corrupt or tampered")

// ErrChecksum is a record whose stored checksum does not match its bytes;
// it is an ErrCorrupt. Whether the bytes or the checksum were hit, opening
// the sealed bytes (which authenticates them) tells.
var ErrChecksum = fmt.Errorf("record checksum mismatch: %w", ErrCorrupt)

// Sealer compresses and encrypts with one tenant's data key, or with one
// message's data key (DataKey). It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
	*codec
	owner bool // Close releases the codec: not a message's Sealer
}

// codec is what a tenant's Sealer shares with the Sealers of its messages'
// data keys: blob names, compression and buffers.
type codec struct {
	mac []byte // key for blob names, derived from the tenant's data key
	enc *zstd.Encoder
	dec *zstd.Decoder

	bufs sync.Pool // *[]byte for WithSealed
	macs sync.Pool // hash.Hash keyed with mac, for AppendBlobKey
}

// WrappedKeySize is the size of a data key wrapped by WrapDataKey.
const WrappedKeySize = sealHeaderSize + KeySize + 16

// maxPooledBuf keeps the buffers of rare huge messages out of the pool.
const maxPooledBuf = 4 << 20

// NewSealer returns a Sealer for a 32-byte data key.
func NewSealer(key []byte) (*Sealer, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	// No zstd frame checksum: AES-GCM authenticates every byte already.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<31))
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("mailvault blob names"))
	return &Sealer{aead: aead, codec: &codec{mac: m.Sum(nil), enc: enc, dec: dec}, owner: true}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("data key: want %d bytes, have %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Close releases the codec resources; a message's Sealer has none of its
// own.
func (s *Sealer) Close() {
	if s.owner {
		s.dec.Close()
	}
}

// DataKey is one message's own data key: its Sealer seals and opens with
// it (blob names stay the tenant's). Destroying every wrapped copy of the
// key makes what it sealed unreadable, whoever holds the sealed bytes and
// the tenant's key (crypto-shredding).
type DataKey [KeySize]byte

// NewDataKey returns a fresh random data key.
func NewDataKey() DataKey {
	var k DataKey
	if _, err := rand.Read(k[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return k
}

// ForKey returns a Sealer for a message's data key that shares s's codec.
func (s *Sealer) ForKey(k *DataKey) (*Sealer, error) {
	aead, err := newAEAD(k[:])
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, codec: s.codec}, nil
}

// AppendWrapDataKey appends k sealed with s's key and bound to aad (the
// message it belongs to): WrappedKeySize bytes.
func (s *Sealer) AppendWrapDataKey(dst []byte, k *DataKey, aad []byte) []byte {
	return s.appendSeal(dst, k[:], aad, false)
}

// UnwrapDataKey opens a key AppendWrapDataKey wrapped and returns its
// Sealer.
func (s *Sealer) UnwrapDataKey(wrapped, aad []byte) (*Sealer, error) {
	var k DataKey
	if len(wrapped) != WrappedKeySize {
		return nil, ErrCorrupt
	}
	plain, err := s.AppendOpen(k[:0], wrapped, aad)
	if err != nil || len(plain) != KeySize {
		return nil, fmt.Errorf("unwrap message key: %w", ErrCorrupt)
	}
	return s.ForKey(&k)
}

// BlobKey names the blob of a message with the given SHA-256: a keyed hash,
// so that whoever sees the files cannot tell whether a known message is
// archived.
func (s *Sealer) BlobKey(sum [32]byte) string {
	m := hmac.New(sha256.New, s.mac)
	m.Write(sum[:])
	return hex.EncodeToString(m.Sum(nil))
}

// AppendBlobKey appends BlobKey(sum) to dst, without BlobKey's
// allocations: listings name one blob per message.
func (s *Sealer) AppendBlobKey(dst []byte, sum [32]byte) []byte {
	m, _ := s.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, s.mac)
	}
	m.Reset()
	m.Write(sum[:])
	var out [sha256.Size]byte
	m.Sum(out[:0])
	s.macs.Put(m)
	return hex.AppendEncode(dst, out[:])
}

// DeriveKey returns a secret for one purpose, derived from the data key:
// for keyed checksums that whoever sees the files cannot recompute.
func (s *Sealer) DeriveKey(purpose string) [32]byte {
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte("mailvault derived key " + purpose))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// Seal compresses (when that saves space) and encrypts plain. aad binds the
// ciphertext to its purpose (e.g. the blob key), so sealed data cannot be
// swapped between places unnoticed.
func (s *Sealer) Seal(plain, aad []byte) []byte { return s.appendSeal(nil, plain, aad, true) }

// SealUncompressed only encrypts: for small records read far more often
// than written (message summaries listed by every FETCH ENVELOPE), where
// decompression would cost more than the bytes it saves.
func (s *Sealer) SealUncompressed(plain, aad []byte) []byte {
	return s.appendSeal(nil, plain, aad, false)
}

// AppendSeal appends the sealed form of plain (as Seal makes it) to dst.
func (s *Sealer) AppendSeal(dst, plain, aad []byte) []byte {
	return s.appendSeal(dst, plain, aad, true)
}

// WithSealed seals plain like Seal into a pooled buffer and passes it to
// use, which must not keep it: the hot path of ingest (seal, write, forget)
// then allocates nothing per message.
func (s *Sealer) WithSealed(plain, aad []byte, use func(sealed []byte) error) error {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	out := s.appendSeal((*bp)[:0], plain, aad, true)
	err := use(out)
	if cap(out) <= maxPooledBuf {
		*bp = out[:0]
		s.bufs.Put(bp)
	}
	return err
}

// appendSeal appends the sealed form of plain to dst. zstd compresses
// straight behind the header and AES-GCM encrypts that in place, so one
// buffer serves both steps.
func (s *Sealer) appendSeal(dst, plain, aad []byte, compress bool) []byte {
	compress = compress && len(plain) > 64
	need := sealHeaderSize + len(plain) + s.aead.Overhead()
	if compress {
		need += len(plain)>>7 + 512 // zstd's worst case
	}
	dst = slices.Grow(dst, need)
	start := len(dst)
	hdr := start + sealHeaderSize
	dst = append(dst, sealMagic...)
	dst = dst[:hdr]
	nonce := dst[start+4 : hdr]
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	if compress {
		c := s.enc.EncodeAll(plain, dst)
		if len(c)-hdr < len(plain) {
			c[start+3] = flagZstd
			nonce = c[start+4 : hdr]
			return s.aead.Seal(c[:hdr], nonce, c[hdr:], aad)
		}
	}
	dst[start+3] = 0
	return s.aead.Seal(dst, nonce, plain, aad)
}

// Open authenticates, decrypts and decompresses what Seal produced.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) { return s.AppendOpen(nil, sealed, aad) }

// AppendOpen is Open appending to dst, which a reader of many small
// records reuses; a compressed record is returned in new memory.
func (s *Sealer) AppendOpen(dst, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < sealHeaderSize+s.aead.Overhead() || string(sealed[:3]) != sealMagic {
		return nil, ErrCorrupt
	}
	flags := sealed[3]
	body, err := s.aead.Open(dst, sealed[4:sealHeaderSize], sealed[sealHeaderSize:], aad)
	if err != nil {
		return nil, ErrCorrupt
	}
	if flags&flagZstd == 0 {
		return body, nil
	}
	plain, err := s.dec.DecodeAll(body, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
	}
	return plain, nil
}

// NewKey returns a fresh random key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return k
}

// LoadOrCreateMasterKey reads the hex master key at path, or creates one
// (mode 0600) when the file does not exist.
func LoadOrCreateMasterKey(path string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(k) != KeySize {
			return nil, false, fmt.Errorf("master key %s: want %d hex-encoded bytes", path, KeySize)
		}
		return k, false, nil
	}
	if !os.IsNotExist(err) {
		return nil, false, fmt.Errorf("read master key: %w", err)
	}
	k := NewKey()
	if err := WriteFileAtomic(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, false, fmt.Errorf("create master key: %w", err)
	}
	return k, true, nil
}

// WrapKey encrypts a data key with the master key, bound to a name (the
// tenant), so a wrapped key cannot be moved to another tenant.
func WrapKey(master, dataKey []byte, name string) ([]byte, error) {
	s, err := NewSealer(master)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Seal(dataKey, []byte("data key "+name)), nil
}

// UnwrapKey reverses WrapKey.
func UnwrapKey(master, wrapped []byte, name string) ([]byte, error) {
	s, err := NewSealer(master)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	k, err := s.Open(wrapped, []byte("data key "+name))
	if err != nil {
		return nil, fmt.Errorf("unwrap data key of %q (wrong master key?): %w", name, err)
	}
	return k, nil
}

// WriteFileAtomic writes data to path through a fsynced temporary file and
// a rename, then fsyncs the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := dirOf(path)
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, os.PathSeparator); i >= 0 {
		return path[:i+1]
	}
	return "."
}
