package backend

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mailvault/mailvault/backend/gdpdu"
	"github.com/mailvault/mailvault/mailparse"
)

// Names of the files of a Z3 package besides the messages.
const (
	Z3Index     = "index.xml"
	Z3Messages  = "messages.csv"
	Z3Audit     = "audit.csv"
	Z3Manifest  = "manifest.sha256"
	Z3Signature = "manifest.sha256.p7s"
	Z3Cert      = "signing-cert.pem"
	Z3Timestamp = "manifest.sha256.tsr"
	z3MsgDir    = "messages/"
)

// spool is a temporary file written once and then copied into the
// archive, hashed (CRC-32 for the ZIP, SHA-256 for the manifest) as it is
// written, so that a table of a million rows costs no memory.
type spool struct {
	f   *os.File
	bw  *bufio.Writer
	crc hash.Hash32
	sha hash.Hash
	n   int64
}

func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "mailvault-export-*")
	if err != nil {
		return nil, fmt.Errorf("export spool: %w", err)
	}
	os.Remove(f.Name())
	return &spool{f: f, bw: bufio.NewWriterSize(f, 64<<10), crc: crc32.NewIEEE(), sha: sha256.New()}, nil
}

func (s *spool) Write(p []byte) (int, error) {
	s.crc.Write(p)
	s.sha.Write(p)
	s.n += int64(len(p))
	return s.bw.Write(p)
}

func (s *spool) sum() string { return hex.EncodeToString(s.sha.Sum(nil)) }

// addTo copies the spooled bytes into the archive as one stored entry.
func (s *spool) addTo(zw *zipWriter, name string, mod time.Time) error {
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("export spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return zw.addStored(name, mod, bufio.NewReaderSize(s.f, 64<<10), s.n, s.crc.Sum32())
}

func (s *spool) close() { s.f.Close() }

// manifestLine appends one line in the format of sha256sum.
func manifestLine(b []byte, sum, name string) []byte {
	return append(append(append(append(b, sum...), "  "...), name...), '\n')
}

var messageColumns = []struct{ name, desc, kind string }{
	{"file", "path of the message file (RFC 5322, as archived) on this carrier", "key"},
	{"date", "date of the message: its Date field, else when it was received", "date"},
	{"sent", "Date field of the message, RFC 3339", "text"},
	{"received", "when the archive received the message, RFC 3339 UTC", "text"},
	{"mailbox", "archive mailbox", "text"},
	{"folder", "folder of the archive mailbox", "text"},
	{"sender", "From addresses", "text"},
	{"recipients", "To, Cc and Bcc addresses", "text"},
	{"subject", "Subject", "text"},
	{"size", "size of the file in bytes", "number"},
	{"sha256", "SHA-256 of the file, hexadecimal", "text"},
}

var auditColumns = []struct{ name, desc, kind string }{
	{"seq", "sequence number in the tenant's audit chain", "key"},
	{"time", "time of the entry, RFC 3339 UTC", "text"},
	{"time_unix_ns", "time of the entry, nanoseconds since 1970 (part of the hash)", "number"},
	{"actor", "who acted (a login, provider, cli:<user>@<host>; empty for the system)", "text"},
	{"action", "what was done", "text"},
	{"detail", "details", "text"},
	{"prev", "hash of the entry before", "text"},
	{"hash", "SHA-256 of seq, time_unix_ns, actor, action, detail and prev, each followed by a NUL byte except the last", "text"},
}

func (t *Tenant) exportZ3(ctx context.Context, p *exportPlan, scope ExportScope, w io.Writer, res *ExportResult) error {
	now := time.Now().UTC()
	zw, err := newZipWriter(w, true)
	if err != nil {
		return err
	}
	defer zw.abort()
	man, err := newSpool()
	if err != nil {
		return err
	}
	defer man.close()
	rows, err := newSpool()
	if err != nil {
		return err
	}
	defer rows.close()
	cw := csv.NewWriter(rows)
	cw.Comma, cw.UseCRLF = ';', true
	header := make([]string, len(messageColumns))
	for i, c := range messageColumns {
		header[i] = c.name
	}
	cw.Write(header)

	var name, line []byte
	rec := make([]string, len(messageColumns))
	err = t.eachMessage(ctx, p.items, func(it exportItem, raw []byte, info MessageInfo) error {
		sum := sha256.Sum256(raw)
		if sum != info.SHA256 {
			return fmt.Errorf("export: message %d does not match its archived SHA-256 (run verify)", it.mid)
		}
		f := &p.folders[it.folder]
		name = strconv.AppendUint(append(append(name[:0], z3MsgDir...), f.prefix...), uint64(it.uid), 10)
		name = append(name, ".eml"...)
		if err := zw.add(string(name), info.Received, raw); err != nil {
			return fmt.Errorf("write export: %w", err)
		}
		hexSum := hex.EncodeToString(sum[:])
		line = manifestLine(line[:0], hexSum, string(name))
		man.Write(line)
		var env mailparse.Envelope
		if s, err := t.Summary(ctx, it.mid); err == nil {
			env = s.Envelope
		}
		date := info.Received
		sent := ""
		if !env.Date.IsZero() {
			date, sent = env.Date, env.Date.Format(time.RFC3339)
		}
		rec[0], rec[1], rec[2], rec[3] = string(name), date.Format("02.01.2006"), sent, info.Received.Format(time.RFC3339)
		rec[4], rec[5] = f.mailbox, f.name
		rec[6] = joinAddresses(env.From)
		rec[7] = joinAddresses(env.To, env.Cc, env.Bcc)
		rec[8] = csvSafe(env.Subject)
		rec[9] = strconv.Itoa(len(raw))
		rec[10] = hexSum
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("export table: %w", err)
		}
		res.Messages++
		res.Bytes += int64(len(raw))
		return nil
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("export table: %w", err)
	}
	if err := rows.addTo(zw, Z3Messages, now); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	man.Write(manifestLine(line[:0], rows.sum(), Z3Messages))

	audit, err := t.z3Audit(p)
	if err != nil {
		return err
	}
	defer audit.close()
	if err := audit.addTo(zw, Z3Audit, now); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	man.Write(manifestLine(line[:0], audit.sum(), Z3Audit))

	for _, f := range []struct {
		name string
		data []byte
	}{{Z3Index, t.z3Index(scope, now)}, {gdpdu.DTDName, []byte(gdpdu.DTD)}} {
		if err := zw.add(f.name, now, f.data); err != nil {
			return fmt.Errorf("write export: %w", err)
		}
		s := sha256.Sum256(f.data)
		man.Write(manifestLine(line[:0], hex.EncodeToString(s[:]), f.name))
	}

	// The manifest is signed as a whole, so it is read back into memory:
	// about 120 bytes a message.
	if err := man.bw.Flush(); err != nil {
		return fmt.Errorf("export spool: %w", err)
	}
	manifest := make([]byte, man.n)
	if _, err := man.f.ReadAt(manifest, 0); err != nil {
		return fmt.Errorf("export spool: %w", err)
	}
	sig, certPEM, err := t.signDetached(ctx, manifest)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{{Z3Manifest, manifest}, {Z3Signature, sig}, {Z3Cert, certPEM}}
	if tsa := t.p.opt.TSA; tsa != nil && tsa.URL != "" {
		// The TSA's token over the manifest dates the package; without one
		// reachable the package goes out undated, and the log says so.
		digest := sha256.Sum256(manifest)
		if reply, err := requestTimestamp(ctx, tsa, digest[:]); err != nil {
			t.log.Warn("Z3 package not timestamped: the TSA did not answer", "err", err)
		} else {
			files = append(files, struct {
				name string
				data []byte
			}{Z3Timestamp, reply})
		}
	}
	for _, f := range files {
		if err := zw.add(f.name, now, f.data); err != nil {
			return fmt.Errorf("write export: %w", err)
		}
	}
	if err := zw.close(); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	return nil
}

func joinAddresses(lists ...[]mailparse.Address) string {
	var b strings.Builder
	for _, l := range lists {
		for _, a := range l {
			if a.Mailbox == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(a.Mailbox)
			if a.Host != "" {
				b.WriteString("@" + a.Host)
			}
		}
	}
	return csvSafe(b.String())
}

// csvSafe keeps a value on one record: audit software splits records at
// CR LF even inside quotes.
func csvSafe(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
}

// z3Audit spools the audit log entries of the scope: those that name one
// of its mailboxes' addresses (every entry for a scope of all mailboxes).
// Each keeps its chain fields, so it can be checked against the chain.
func (t *Tenant) z3Audit(p *exportPlan) (*spool, error) {
	all := len(p.mboxes) == len(t.Mailboxes())
	var addrs []string
	t.mu.RLock()
	for _, id := range p.mboxes {
		if mb := t.mailboxes[id]; mb != nil {
			addrs = append(addrs, mb.Addresses()...)
		}
	}
	t.mu.RUnlock()
	s, err := newSpool()
	if err != nil {
		return nil, err
	}
	cw := csv.NewWriter(s)
	cw.Comma, cw.UseCRLF = ';', true
	header := make([]string, len(auditColumns))
	for i, c := range auditColumns {
		header[i] = c.name
	}
	cw.Write(header)
	var after uint64
	for {
		page, err := t.AuditLog(after, 1000)
		if err != nil {
			s.close()
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			after = e.Seq
			if !all && !mentions(e, addrs) {
				continue
			}
			cw.Write([]string{strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), strconv.FormatInt(e.Time.UnixNano(), 10),
				e.Actor, e.Action, csvSafe(e.Detail), e.Prev, e.Hash})
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		s.close()
		return nil, fmt.Errorf("export audit table: %w", err)
	}
	return s, nil
}

func mentions(e AuditEntry, addrs []string) bool {
	text := strings.ToLower(e.Actor + " " + e.Detail)
	for _, a := range addrs {
		if strings.Contains(text, a) {
			return true
		}
	}
	return false
}

// z3Index writes index.xml: the two tables in the GDPdU Beschreibungsstandard.
func (t *Tenant) z3Index(scope ExportScope, now time.Time) []byte {
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE DataSet SYSTEM \"%s\">\n<DataSet>\n  <Version>1.0</Version>\n", gdpdu.DTDName)
	fmt.Fprintf(&b, "  <DataSupplier>\n    <Name>%s</Name>\n    <Location>mailvault e-mail archive</Location>\n    <Comment>%s</Comment>\n  </DataSupplier>\n",
		esc(t.Name), esc("export of "+now.Format(time.RFC3339)+", scope: "+scope.String()))
	fmt.Fprintf(&b, "  <Media>\n    <Name>%s</Name>\n", esc("mailvault Z3 "+t.Name+" "+now.Format(time.DateOnly)))
	validity := ""
	if !scope.Since.IsZero() || !scope.Until.IsZero() {
		from, to := "01.01.1970", now.Format("02.01.2006")
		if !scope.Since.IsZero() {
			from = scope.Since.UTC().Format("02.01.2006")
		}
		if !scope.Until.IsZero() {
			to = scope.Until.UTC().Add(-time.Second).Format("02.01.2006")
		}
		validity = fmt.Sprintf("      <Validity>\n        <Range>\n          <From>%s</From>\n          <To>%s</To>\n        </Range>\n        <Format>DD.MM.YYYY</Format>\n      </Validity>\n", from, to)
	}
	table := func(url, name, desc, validity string, cols []struct{ name, desc, kind string }) {
		fmt.Fprintf(&b, "    <Table>\n      <URL>%s</URL>\n      <Name>%s</Name>\n      <Description>%s</Description>\n%s", url, name, esc(desc), validity)
		b.WriteString("      <UTF8/>\n      <DecimalSymbol>,</DecimalSymbol>\n      <DigitGroupingSymbol>.</DigitGroupingSymbol>\n      <Range>\n        <From>2</From>\n      </Range>\n")
		b.WriteString("      <VariableLength>\n        <ColumnDelimiter>;</ColumnDelimiter>\n        <RecordDelimiter>&#13;&#10;</RecordDelimiter>\n        <TextEncapsulator>\"</TextEncapsulator>\n")
		for _, c := range cols {
			tag, typ := "VariableColumn", "<AlphaNumeric/>"
			switch c.kind {
			case "key":
				tag = "VariablePrimaryKey"
				if c.name == "seq" {
					typ = "<Numeric/>"
				}
			case "date":
				typ = "<Date>\n            <Format>DD.MM.YYYY</Format>\n          </Date>"
			case "number":
				typ = "<Numeric/>"
			}
			fmt.Fprintf(&b, "        <%s>\n          <Name>%s</Name>\n          <Description>%s</Description>\n          %s\n        </%s>\n", tag, c.name, esc(c.desc), typ, tag)
		}
		b.WriteString("      </VariableLength>\n    </Table>\n")
	}
	table(Z3Messages, "Messages", "archived e-mail messages of the scope; the files are under messages/", validity, messageColumns)
	table(Z3Audit, "AuditLog", "entries of the archive's audit log that concern the scope", "", auditColumns)
	b.WriteString("  </Media>\n</DataSet>\n")
	return b.Bytes()
}
