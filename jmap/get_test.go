package jmap

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func (c *client) getEmail(acct string, mid uint64, args map[string]any) map[string]any {
	c.t.Helper()
	args["accountId"] = acct
	args["ids"] = []string{emailID(mid)}
	l := list(c.t, c.api(call{"Email/get", args, "g"})["g"].ok(c.t))
	if len(l) != 1 {
		c.t.Fatalf("Email/get %d: %v", mid, l)
	}
	return l[0]
}

func addr(name any, email string) map[string]any { return map[string]any{"name": name, "email": email} }

// TestEmailGet checks Email/get (RFC 8621 4.1, 4.2) on handcrafted MIME.
func TestEmailGet(t *testing.T) {
	f := sharedFixture(t)
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)
	inbox, _ := f.folder(t, f.acme, alice, alice, "INBOX")
	alt := f.hand["alternative"].mid

	e := c.getEmail(acct, alt, map[string]any{})
	want := map[string]any{
		"id": emailID(alt), "blobId": blobID(alt), "mailboxIds": map[string]any{inbox: true},
		"keywords": map[string]any{"$seen": true}, "size": len(f.hand["alternative"].raw),
		"receivedAt": "2023-03-14T07:31:00Z", "messageId": []any{"angebot-1@acme.example"},
		"inReplyTo": nil, "references": nil,
		"sender":  []any{addr("Assistenz", "office@acme.example")},
		"from":    []any{addr("Hans Müller", "hans@acme.example")},
		"to":      []any{addr(nil, "alice@acme.example"), addr("Bob B.", "bob@acme.example"), addr(nil, "dave@acme.example")},
		"cc":      []any{addr("Jörg", "joerg@acme.example")},
		"bcc":     nil,
		"replyTo": []any{addr(nil, "angebote@acme.example")},
		"subject": "Angebot für Köln", "sentAt": "2023-03-14T09:30:00+02:00", "hasAttachment": true,
		"bodyValues": map[string]any{},
	}
	for k, v := range want {
		if !jsonEq(e[k], v) {
			t.Errorf("%s: got %s, want %s", k, mustJSON(e[k]), mustJSON(v))
		}
	}
	if len(e) != len(defaultEmailProperties) || !strings.HasPrefix(e["preview"].(string), "Grüße aus Köln, das Angebot") ||
		!strings.HasPrefix(e["threadId"].(string), "T") {
		t.Errorf("default properties: %v", e)
	}
	partIDs := func(v any) []string {
		var out []string
		for _, p := range v.([]any) {
			out = append(out, p.(map[string]any)["partId"].(string))
		}
		return out
	}
	if !slices.Equal(partIDs(e["textBody"]), []string{"1.1"}) || !slices.Equal(partIDs(e["htmlBody"]), []string{"1.2"}) ||
		!slices.Equal(partIDs(e["attachments"]), []string{"2"}) {
		t.Errorf("bodies: %s %s %s", mustJSON(e["textBody"]), mustJSON(e["htmlBody"]), mustJSON(e["attachments"]))
	}
	pdf, err := os.ReadFile(filepath.Join("testdata", "angebot.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	att := e["attachments"].([]any)[0]
	wantAtt := map[string]any{"partId": "2", "blobId": blobID(alt) + "-2", "size": len(pdf), "name": "Angebot-Müller.pdf",
		"type": "application/pdf", "charset": nil, "disposition": "attachment", "cid": nil, "language": nil, "location": nil}
	if !jsonEq(att, wantAtt) {
		t.Errorf("attachment %s", mustJSON(att))
	}
	if text := e["textBody"].([]any)[0].(map[string]any); text["charset"] != "iso-8859-1" || text["type"] != "text/plain" {
		t.Errorf("text part %v", text)
	}

	// Body values: decoded from quoted-printable Latin-1 and base64 UTF-8.
	e = c.getEmail(acct, alt, map[string]any{"properties": []string{"bodyValues"}, "fetchTextBodyValues": true, "fetchHTMLBodyValues": true})
	bv := e["bodyValues"].(map[string]any)
	text, html := bv["1.1"].(map[string]any), bv["1.2"].(map[string]any)
	if text["value"] != "Grüße aus Köln, das Angebot liegt bei. Diese Zeile ist sehr lang und wird weich umbrochen." ||
		text["isEncodingProblem"] != false || text["isTruncated"] != false || len(bv) != 2 {
		t.Errorf("text value %q", mustJSON(bv))
	}
	if !strings.Contains(html["value"].(string), "<b>Köln</b>") {
		t.Errorf("html value %v", html)
	}
	e = c.getEmail(acct, alt, map[string]any{"properties": []string{"bodyValues"}, "fetchAllBodyValues": true, "maxBodyValueBytes": 6})
	bv = e["bodyValues"].(map[string]any)
	if v := bv["1.1"].(map[string]any); v["value"] != "Grüß" || v["isTruncated"] != true || !utf8.ValidString(v["value"].(string)) || len(bv) != 2 {
		t.Errorf("truncated %s", mustJSON(bv))
	}

	// Header forms, on raw fields.
	e = c.getEmail(acct, alt, map[string]any{"properties": []string{"headers", "header:X-Tag", "header:X-Tag:all", "header:x-tag:asText:all",
		"header:List-Unsubscribe:asURLs", "header:To:asGroupedAddresses", "header:Date:asDate", "header:Message-ID:asMessageIds",
		"header:Subject:asText", "header:From:asAddresses", "header:X-Missing", "header:X-Missing:all", "header:Cc:asText"}})
	for k, v := range map[string]any{
		"header:X-Tag":                   "  second\r\n folded",
		"header:X-Tag:all":               []any{" first", "  second\r\n folded"},
		"header:x-tag:asText:all":        []any{"first", "second folded"},
		"header:List-Unsubscribe:asURLs": []any{"mailto:leave@acme.example", "https://acme.example/unsubscribe?id=1"},
		"header:To:asGroupedAddresses": []any{
			map[string]any{"name": "Projekt", "addresses": []any{addr(nil, "alice@acme.example"), addr("Bob B.", "bob@acme.example")}},
			map[string]any{"name": nil, "addresses": []any{addr(nil, "dave@acme.example")}}},
		"header:Date:asDate":             "2023-03-14T09:30:00+02:00",
		"header:Message-ID:asMessageIds": []any{"angebot-1@acme.example"},
		"header:Subject:asText":          "Angebot für Köln",
		"header:From:asAddresses":        []any{addr("Hans Müller", "hans@acme.example")},
		"header:X-Missing":               nil,
		"header:X-Missing:all":           []any{},
		"header:Cc:asText":               "Jörg <joerg@acme.example>",
	} {
		if got, ok := e[k]; !ok || !jsonEq(got, v) {
			t.Errorf("%s: got %s, want %s", k, mustJSON(got), mustJSON(v))
		}
	}
	hs := e["headers"].([]any)
	if first := hs[0].(map[string]any); first["name"] != "Return-Path" || first["value"] != " <hans@acme.example>" || len(hs) != 14 {
		t.Errorf("headers: %d %s", len(hs), mustJSON(hs[:2]))
	}

	// bodyStructure is the MIME tree; body properties apply to its parts.
	e = c.getEmail(acct, alt, map[string]any{"properties": []string{"bodyStructure", "textBody"},
		"bodyProperties": []string{"partId", "type", "headers", "header:Content-Transfer-Encoding:asText", "subParts"}})
	bs := e["bodyStructure"].(map[string]any)
	if bs["type"] != "multipart/mixed" || bs["partId"] != nil {
		t.Errorf("root %s", mustJSON(bs))
	}
	subs := bs["subParts"].([]any)
	inner := subs[0].(map[string]any)
	if len(subs) != 2 || inner["type"] != "multipart/alternative" || len(inner["subParts"].([]any)) != 2 {
		t.Errorf("tree %s", mustJSON(bs))
	}
	tb := e["textBody"].([]any)[0].(map[string]any)
	if tb["header:Content-Transfer-Encoding:asText"] != "quoted-printable" || tb["subParts"] != nil || len(tb["headers"].([]any)) != 2 {
		t.Errorf("part headers %s", mustJSON(tb))
	}

	// Other shapes: multipart/related, an attached message, undeclared 8-bit.
	rel := c.getEmail(acct, f.hand["related"].mid, map[string]any{"properties": []string{"textBody", "htmlBody", "attachments", "hasAttachment"}})
	if !slices.Equal(partIDs(rel["htmlBody"]), []string{"1"}) || !slices.Equal(partIDs(rel["attachments"]), []string{"2"}) ||
		rel["attachments"].([]any)[0].(map[string]any)["cid"] != "logo@acme" {
		t.Errorf("related: %s", mustJSON(rel))
	}
	lat := c.getEmail(acct, f.hand["latin1"].mid, map[string]any{"properties": []string{"bodyValues", "textBody"}, "fetchTextBodyValues": true})
	if v := lat["bodyValues"].(map[string]any)["1"].(map[string]any); v["value"] != "Schöne Grüße aus München\n" || v["isEncodingProblem"] != true {
		t.Errorf("latin1 %s", mustJSON(lat))
	}
	bc := f.client(t, bob)
	sales := f.account(t, f.acme, "sales@acme.example")
	fwd := bc.getEmail(sales, f.hand["forward"].mid, map[string]any{"properties": []string{"textBody", "attachments"}})
	if !slices.Equal(partIDs(fwd["textBody"]), []string{"1"}) || fwd["attachments"].([]any)[0].(map[string]any)["type"] != "message/rfc822" {
		t.Errorf("forward %s", mustJSON(fwd))
	}

	// Ids: unknown, malformed, and in another account, are not found;
	// ids null lists a small account.
	r := c.api(call{"Email/get", map[string]any{"accountId": acct, "ids": []string{"M999999", "Mx", "M0", emailID(f.hand["forward"].mid)},
		"properties": []string{"id"}}, "g"})["g"].ok(t)
	if len(list(t, r)) != 0 || len(strs(t, r["notFound"])) != 4 {
		t.Errorf("not found: %v", r)
	}
	r = bc.api(call{"Email/get", map[string]any{"accountId": sales, "ids": nil, "properties": []string{"subject"}}, "g"})["g"].ok(t)
	if l := list(t, r); len(l) != 1 || l[0]["subject"] != "Fwd: Bestellung 4711" {
		t.Errorf("ids null: %v", r)
	}
}

// TestDownload checks blob downloads: whole messages byte-exact, parts
// decoded, types, names, ranges, and that blobs are reached only through
// an account holding them.
func TestDownload(t *testing.T) {
	f := sharedFixture(t)
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)
	alt := f.hand["alternative"]
	get := func(c *client, acct, blob, name, typ string, header ...string) (*http.Response, []byte) {
		return c.do("GET", fmt.Sprintf("%s%s/%s/%s?type=%s", downloadPrefix, acct, blob, url.PathEscape(name), url.QueryEscape(typ)), nil, header...)
	}
	r, b := get(c, acct, blobID(alt.mid), "message.eml", "message/rfc822")
	if r.StatusCode != http.StatusOK || !bytes.Equal(b, alt.raw) || r.Header.Get("Content-Type") != "message/rfc822" {
		t.Fatalf("message: %d %q %d bytes", r.StatusCode, r.Header.Get("Content-Type"), len(b))
	}
	info, _ := f.acme.Message(alt.mid)
	if sha256.Sum256(b) != info.SHA256 {
		t.Error("downloaded message differs from the archived one")
	}
	pdf, _ := os.ReadFile(filepath.Join("testdata", "angebot.pdf"))
	r, b = get(c, acct, blobID(alt.mid)+"-2", "Angebot-Müller.pdf", "application/pdf")
	if r.StatusCode != http.StatusOK || !bytes.Equal(b, pdf) || r.Header.Get("Content-Type") != "application/pdf" ||
		!strings.Contains(r.Header.Get("Content-Disposition"), "Angebot-M%C3%BCller.pdf") {
		t.Fatalf("part: %d %v", r.StatusCode, r.Header)
	}
	r, b = get(c, acct, blobID(alt.mid)+"-2", "a.pdf", "application/pdf", "Range", "bytes=10-19")
	if r.StatusCode != http.StatusPartialContent || !bytes.Equal(b, pdf[10:20]) {
		t.Errorf("range: %d %q", r.StatusCode, b)
	}
	r, b = get(c, acct, blobID(alt.mid)+"-1-1", "t.txt", "text/plain;charset=iso-8859-1")
	if r.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte("Gr\xfc\xdfe aus K\xf6ln")) {
		t.Errorf("qp part: %d %q", r.StatusCode, b)
	}
	for _, tc := range []struct {
		who        string
		acct, blob string
	}{
		{alice, acct, blobID(alt.mid) + "-1"},                                              // a multipart has no blob
		{alice, acct, blobID(alt.mid) + "-9"},                                              // no such part
		{alice, acct, blobID(f.hand["forward"].mid)},                                       // not in her account
		{alice, f.account(t, f.acme, "sales@acme.example"), blobID(f.hand["forward"].mid)}, // not her account
		{bob, f.account(t, f.acme, bob), blobID(alt.mid)},                                  // bob's account lacks it
		{eve, acct, blobID(alt.mid)},                                                       // another tenant
		{alice, acct, "B0"},
	} {
		if r, _ := get(f.client(t, tc.who), tc.acct, tc.blob, "x", "text/plain"); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s %s: %d", tc.who, tc.acct, tc.blob, r.StatusCode)
		}
	}
}

// TestThreadsAndSnippets checks Thread/get and SearchSnippet/get.
func TestThreadsAndSnippets(t *testing.T) {
	f := sharedFixture(t)
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)
	h := f.hand
	threadOf := map[string]string{}
	r := c.api(call{"Email/get", map[string]any{"accountId": acct, "properties": []string{"threadId"},
		"ids": ids([]uint64{h["thread1"].mid, h["thread2"].mid, h["thread3"].mid, h["orphan-reply"].mid, h["orphan-parent"].mid, h["latin1"].mid})}, "g"})
	for _, e := range list(t, r["g"].ok(t)) {
		threadOf[e["id"].(string)] = e["threadId"].(string)
	}
	t1, o1 := threadOf[emailID(h["thread1"].mid)], threadOf[emailID(h["orphan-reply"].mid)]
	if threadOf[emailID(h["thread2"].mid)] != t1 || threadOf[emailID(h["thread3"].mid)] != t1 ||
		threadOf[emailID(h["orphan-parent"].mid)] != o1 || o1 == t1 || threadOf[emailID(h["latin1"].mid)] == t1 {
		t.Fatalf("threads: %v", threadOf)
	}
	r = c.api(call{"Thread/get", map[string]any{"accountId": acct, "ids": []string{t1, o1, "T999999", "Tx"}}, "t"})
	got := r["t"].ok(t)
	l := list(t, got)
	if len(l) != 2 || !slices.Equal(strs(t, l[0]["emailIds"]), ids([]uint64{h["thread1"].mid, h["thread2"].mid, h["thread3"].mid})) ||
		!slices.Equal(strs(t, l[1]["emailIds"]), ids([]uint64{h["orphan-parent"].mid, h["orphan-reply"].mid})) ||
		len(strs(t, got["notFound"])) != 2 || !strings.HasPrefix(got["state"].(string), "t") {
		t.Errorf("Thread/get: %s", r["t"].raw)
	}

	r = c.api(call{"SearchSnippet/get", map[string]any{"accountId": acct, "filter": map[string]any{"text": "Köln"},
		"emailIds": ids([]uint64{h["alternative"].mid, h["forward"].mid, 999999})}, "s"})
	sn := r["s"].ok(t)
	if l := list(t, sn); len(l) != 1 || l[0]["subject"] != "Angebot für <mark>Köln</mark>" ||
		!strings.Contains(l[0]["preview"].(string), "<mark>Köln</mark>") || len(strs(t, sn["notFound"])) != 2 {
		t.Errorf("snippets: %s", r["s"].raw)
	}
	r = c.api(call{"SearchSnippet/get", map[string]any{"accountId": acct, "filter": map[string]any{"body": "Dienstag"},
		"emailIds": ids([]uint64{h["thread2"].mid})}, "s"})
	if l := list(t, r["s"].ok(t)); len(l) != 1 || l[0]["subject"] != nil || l[0]["preview"] != "<mark>Dienstag</mark> um zehn." {
		t.Errorf("body snippet: %s", r["s"].raw)
	}
}
