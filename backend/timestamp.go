package backend

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"
)

// TSAOptions configure RFC 3161 timestamps of the tenants' chain heads.
type TSAOptions struct {
	URL string // the time-stamping authority, HTTP(S)
	// Roots are the certificates a token's signer must chain to; nil skips
	// the chain check (verify then says so).
	Roots    *x509.CertPool
	Interval time.Duration
	Client   *http.Client
}

// Chain kinds a timestamp covers.
const (
	ChainMessages = "messages"
	ChainAudit    = "audit"
)

var (
	oidSHA256  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidTSTInfo = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
)

type messageImprint struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashedMessage []byte
}

type timeStampReq struct {
	Version        int
	MessageImprint messageImprint
	Nonce          *big.Int `asn1:"optional"`
	CertReq        bool     `asn1:"optional,default:false"`
}

type pkiStatusInfo struct {
	Status       int
	StatusString []string       `asn1:"optional,utf8"`
	FailInfo     asn1.BitString `asn1:"optional"`
}

type timeStampResp struct {
	Status pkiStatusInfo
	Token  asn1.RawValue `asn1:"optional"`
}

// tstInfo holds the fields of a TSTInfo that verify uses.
type tstInfo struct {
	Imprint messageImprint
	Serial  *big.Int
	GenTime time.Time
	Nonce   *big.Int
}

// parseTSTInfo reads a TSTInfo (RFC 3161 2.4.2). Its optional fields
// differ in tag, which encoding/asn1 cannot tell apart in a struct, so
// the tail is walked element by element.
func parseTSTInfo(der []byte) (*tstInfo, error) {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 || seq.Tag != asn1.TagSequence {
		return nil, fmt.Errorf("TSTInfo: not a sequence")
	}
	b := seq.Bytes
	var version int
	var policy asn1.ObjectIdentifier
	ti := &tstInfo{}
	var err error
	for _, out := range []any{&version, &policy, &ti.Imprint, &ti.Serial} {
		if b, err = asn1.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("TSTInfo: %w", err)
		}
	}
	if b, err = asn1.UnmarshalWithParams(b, &ti.GenTime, "generalized"); err != nil {
		return nil, fmt.Errorf("TSTInfo genTime: %w", err)
	}
	for len(b) > 0 {
		var el asn1.RawValue
		if b, err = asn1.Unmarshal(b, &el); err != nil {
			return nil, fmt.Errorf("TSTInfo: %w", err)
		}
		if el.Class == asn1.ClassUniversal && el.Tag == asn1.TagInteger {
			ti.Nonce = new(big.Int)
			if _, err := asn1.Unmarshal(el.FullBytes, &ti.Nonce); err != nil {
				return nil, fmt.Errorf("TSTInfo nonce: %w", err)
			}
		}
	}
	return ti, nil
}

// timestampDir holds a tenant's tokens, one file per timestamp,
// <kind>-<sequence>.tsr: the TSA's whole DER reply, as `openssl ts
// -verify -in` reads it.
func (t *Tenant) timestampDir() string { return filepath.Join(t.dir, "timestamps") }

func timestampFile(kind string, seq uint64) string {
	return fmt.Sprintf("%s-%016d.tsr", kind, seq)
}

// chainHeads returns the heads of the message and audit chains.
func (t *Tenant) chainHeads() map[string]struct {
	seq  uint64
	head [32]byte
} {
	t.wmu.Lock()
	st := t.state
	t.wmu.Unlock()
	return map[string]struct {
		seq  uint64
		head [32]byte
	}{ChainMessages: {st.Messages, st.Chain}, ChainAudit: {st.Audit, st.AuditHash}}
}

// Timestamp has the heads of the tenant's chains timestamped by the TSA,
// each unless it already has a token for its current sequence number.
func (t *Tenant) Timestamp(ctx context.Context, tsa *TSAOptions) error {
	t.touch()
	dir := t.timestampDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var errs []error
	for _, kind := range []string{ChainMessages, ChainAudit} {
		h := t.chainHeads()[kind]
		if h.seq == 0 {
			continue
		}
		path := filepath.Join(dir, timestampFile(kind, h.seq))
		if _, err := os.Stat(path); err == nil {
			continue
		}
		reply, err := requestTimestamp(ctx, tsa, h.head[:])
		if err != nil {
			errs = append(errs, fmt.Errorf("timestamp %s chain of tenant %s at %d: %w", kind, t.Name, h.seq, err))
			continue
		}
		if err := writeFileSync(path, reply); err != nil {
			errs = append(errs, err)
			continue
		}
		t.log.Info("chain head timestamped", "chain", kind, "seq", h.seq, "head", hex.EncodeToString(h.head[:]))
	}
	return errors.Join(errs...)
}

// requestTimestamp asks the TSA for a token over digest (SHA-256) and
// checks that the reply grants one for exactly that digest and nonce.
func requestTimestamp(ctx context.Context, tsa *TSAOptions, digest []byte) ([]byte, error) {
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, err
	}
	q, err := asn1.Marshal(timeStampReq{Version: 1, MessageImprint: messageImprint{
		HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.NullRawValue}, HashedMessage: digest},
		Nonce: nonce, CertReq: true})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tsa.URL, bytes.NewReader(q))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/timestamp-query")
	hc := tsa.Client
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("TSA answered %s", resp.Status)
	}
	tok, err := parseReply(reply)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tok.info.Imprint.HashedMessage, digest) || tok.info.Nonce == nil || tok.info.Nonce.Cmp(nonce) != 0 {
		return nil, fmt.Errorf("TSA reply is for another request")
	}
	return reply, nil
}

type parsedToken struct {
	p7   *pkcs7.PKCS7
	info *tstInfo
}

func parseReply(reply []byte) (*parsedToken, error) {
	var r timeStampResp
	if _, err := asn1.Unmarshal(reply, &r); err != nil {
		return nil, fmt.Errorf("TSA reply: %w", err)
	}
	if r.Status.Status > 1 { // 0 granted, 1 granted with modifications
		return nil, fmt.Errorf("TSA refused: status %d %s", r.Status.Status, strings.Join(r.Status.StatusString, "; "))
	}
	if len(r.Token.FullBytes) == 0 {
		return nil, fmt.Errorf("TSA reply holds no token")
	}
	p7, err := pkcs7.Parse(r.Token.FullBytes)
	if err != nil {
		return nil, fmt.Errorf("timestamp token: %w", err)
	}
	info, err := parseTSTInfo(p7.Content)
	if err != nil {
		return nil, err
	}
	return &parsedToken{p7: p7, info: info}, nil
}

// TimestampCheck is verify's finding on one token.
type TimestampCheck struct {
	Chain string    `json:"chain"` // messages or audit
	Seq   uint64    `json:"seq"`
	Head  string    `json:"head"` // the chain head the token covers, hex
	Time  time.Time `json:"time,omitzero"`
	File  string    `json:"file"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}

// TimestampReport sums up the tokens: from when each chain's contents are
// provably unchanged.
type TimestampReport struct {
	Configured bool             `json:"configured"`
	Tokens     []TimestampCheck `json:"tokens"`
	Summary    []string         `json:"summary"`
}

// VerifyTimestamps checks every stored token: the reply parses, its
// signature verifies and its signer chains to roots (at the token's
// time), it is for SHA-256, and its imprint equals the chain head at its
// sequence number now. Problems go to the returned list.
func (t *Tenant) VerifyTimestamps(roots *x509.CertPool, configured bool) (*TimestampReport, []Problem, error) {
	rep := &TimestampReport{Configured: configured, Tokens: []TimestampCheck{}}
	names, err := filepath.Glob(filepath.Join(t.timestampDir(), "*.tsr"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	t.mu.RLock()
	chains := make([][32]byte, len(t.msgs))
	for i := range t.msgs {
		chains[i] = t.msgs[i].chain
	}
	t.mu.RUnlock()
	audit, err := t.AuditLog(0, 0)
	if err != nil {
		return nil, nil, err
	}
	var problems []Problem
	first := map[string]TimestampCheck{}
	last := map[string]TimestampCheck{}
	for _, path := range names {
		base := filepath.Base(path)
		kind, seqs, ok := strings.Cut(strings.TrimSuffix(base, ".tsr"), "-")
		seq, err := strconv.ParseUint(seqs, 10, 64)
		if !ok || err != nil || (kind != ChainMessages && kind != ChainAudit) {
			continue
		}
		c := TimestampCheck{Chain: kind, Seq: seq, File: base}
		var head []byte
		switch {
		case kind == ChainMessages && seq >= 1 && seq <= uint64(len(chains)):
			head = chains[seq-1][:]
		case kind == ChainAudit && seq >= 1 && seq <= uint64(len(audit)):
			head, _ = hex.DecodeString(audit[seq-1].Hash)
		}
		c.Head = hex.EncodeToString(head)
		err = checkToken(path, roots, head, &c)
		if err != nil {
			c.Error = err.Error()
			kindName := "timestamp-invalid"
			if errors.Is(err, errImprint) {
				kindName = "timestamp-mismatch"
			}
			problems = append(problems, Problem{MID: midIf(kind, seq), Kind: kindName, Detail: fmt.Sprintf("%s chain at %d (%s): %v", kind, seq, base, err)})
		} else {
			c.OK = true
			if f, ok := first[kind]; !ok || c.Time.Before(f.Time) {
				first[kind] = c
			}
			if l, ok := last[kind]; !ok || c.Seq > l.Seq {
				last[kind] = c
			}
		}
		rep.Tokens = append(rep.Tokens, c)
	}
	for _, kind := range []string{ChainMessages, ChainAudit} {
		what := map[string]string{ChainMessages: "messages", ChainAudit: "audit entries"}[kind]
		l, ok := last[kind]
		if !ok {
			rep.Summary = append(rep.Summary, fmt.Sprintf("%s chain: no valid timestamp exists; nothing proves when its contents existed", kind))
			continue
		}
		f := first[kind]
		rep.Summary = append(rep.Summary, fmt.Sprintf("%s chain: %s 1 to %d provably unchanged since %s (the earliest token covers 1 to %d from %s)",
			kind, what, l.Seq, l.Time.UTC().Format(time.RFC3339), f.Seq, f.Time.UTC().Format(time.RFC3339)))
	}
	if len(names) == 0 {
		rep.Summary = []string{"no timestamps exist: no time-stamping authority is configured ([evidence] tsa_url)"}
		if configured {
			rep.Summary = []string{"no timestamps exist yet: the first is taken at the next interval"}
		}
	}
	return rep, problems, nil
}

func midIf(kind string, seq uint64) uint64 {
	if kind == ChainMessages {
		return seq
	}
	return 0
}

var errImprint = errors.New("the token's message imprint is not the chain head at this sequence number")

func checkToken(path string, roots *x509.CertPool, head []byte, c *TimestampCheck) error {
	reply, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tok, err := parseReply(reply)
	if err != nil {
		return err
	}
	c.Time = tok.info.GenTime
	if !tok.info.Imprint.HashAlgorithm.Algorithm.Equal(oidSHA256) {
		return fmt.Errorf("the token is not over a SHA-256 digest")
	}
	if roots != nil {
		err = tok.p7.VerifyWithChainAtTime(roots, tok.info.GenTime)
	} else {
		err = tok.p7.Verify()
	}
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if signer := tok.p7.GetOnlySigner(); signer != nil && roots != nil {
		if _, err := signer.Verify(x509.VerifyOptions{Roots: roots, Intermediates: certPool(tok.p7.Certificates), CurrentTime: tok.info.GenTime,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}}); err != nil {
			return fmt.Errorf("the signer is no time-stamping authority of the configured CA: %w", err)
		}
	}
	if len(head) == 0 {
		return fmt.Errorf("%w (the chain is shorter than %d: records were removed)", errImprint, c.Seq)
	}
	if !bytes.Equal(tok.info.Imprint.HashedMessage, head) {
		return fmt.Errorf("%w (the token covers %x)", errImprint, tok.info.Imprint.HashedMessage)
	}
	return nil
}

func certPool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// writeFileSync writes a file under a temporary name, syncs it and renames
// it into place, so a token file is whole or absent.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
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
		return fmt.Errorf("store timestamp: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// TimestampLoop timestamps the chain heads of every tenant at the
// configured interval until ctx ends.
func (p *Provider) TimestampLoop(ctx context.Context) error {
	tsa := p.opt.TSA
	if tsa == nil || tsa.URL == "" {
		return nil
	}
	iv := tsa.Interval
	if iv <= 0 {
		iv = 24 * time.Hour
	}
	tick := time.NewTicker(iv)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		infos, err := p.Tenants()
		if err != nil {
			p.log.Error("timestamps: list tenants", "err", err)
			continue
		}
		for _, info := range infos {
			t, err := p.Tenant(ctx, info.Name)
			if err != nil {
				p.log.Error("timestamps: open tenant", "tenant", info.Name, "err", err)
				continue
			}
			if err := t.Timestamp(ctx, tsa); err != nil {
				p.log.Error("timestamping failed; retried at the next interval", "tenant", info.Name, "err", err)
			}
		}
	}
}
