package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusalTexts plays what Thunderbird's Delete and Archive buttons,
// a drag to another folder and folder management send, over python3
// imaplib: every write is answered NO [CANNOT] (never [TRYCREATE], which
// makes a client create the folder and retry) with the text the client
// shows the user, and afterwards every message is still there.
func TestRefusalTexts(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	dir := t.TempDir()
	for _, id := range []string{"one", "two"} {
		p := filepath.Join(dir, id+".eml")
		if err := os.WriteFile(p, orderMessage(id, 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in.mustCLI("import", "-quiet", "-tenant", "acme", "-mailbox", "alice@acme.example", dir)

	const ro = "[CANNOT] The archive is read-only: "
	want := []struct{ name, answer string }{
		// Delete: move to Trash, which does not exist.
		{"UID MOVE 1 Trash", ro + "messages cannot be moved or deleted; the message stays in the archive (copy it to a folder of another account)"},
		{"CREATE Trash", ro + "folders cannot be created here; keep Trash, Drafts and Archives folders in another account"},
		// Delete without MOVE, or "mark as deleted".
		{"UID COPY 1 Trash", ro + "messages cannot be copied into archive folders; copy them to a folder of another account"},
		{"UID STORE 1 +FLAGS (\\Deleted)", ro + "messages cannot be deleted, the message stays in the archive; \\Seen, \\Flagged, \\Answered, \\Draft and keywords can be set"},
		{"EXPUNGE", "OK"},
		// Archive: Archives/<year>, then a move.
		{"CREATE Archives/2023", ro + "folders cannot be created here; keep Trash, Drafts and Archives folders in another account"},
		{"UID MOVE 1:2 Archives/2023", ro + "messages cannot be moved or deleted; the message stays in the archive (copy it to a folder of another account)"},
		{"APPEND Sent", ro + "messages cannot be added here; mail enters the archive by journaling or import"},
		{"DELETE INBOX", ro + "folders cannot be deleted; the folder and its messages stay in the archive"},
		{"RENAME INBOX Old", ro + "folders cannot be renamed; the folder keeps its name"},
		{"UNSUBSCRIBE INBOX", ro + "every archive folder you may read stays subscribed"},
		{"EXAMINE, UID STORE 1 +FLAGS (\\Flagged)", "[CANNOT] The folder was opened read-only (EXAMINE); open it with SELECT to change your own flags"},
	}
	var got struct {
		Answers [][]string
		After   []string
	}
	in.imaplib("alice@acme.example", "alice-secret", `
def last(r):
    return [r[0], r[-1] if len(r) > 1 else '']
M.select('INBOX')
a = []
a.append(last(attempt(M.uid, 'MOVE', '1', 'Trash')))
a.append(last(attempt(M.create, 'Trash')))
a.append(last(attempt(M.uid, 'COPY', '1', 'Trash')))
a.append(last(attempt(M.uid, 'STORE', '1', '+FLAGS', '(\\Deleted)')))
a.append(last(attempt(M.expunge)))
a.append(last(attempt(M.create, 'Archives/2023')))
a.append(last(attempt(M.uid, 'MOVE', '1:2', 'Archives/2023')))
a.append(last(attempt(M.append, 'Sent', None, None, b'Subject: x\r\n\r\nappended\r\n')))
a.append(last(attempt(M.delete, 'INBOX')))
a.append(last(attempt(M.rename, 'INBOX', 'Old')))
a.append(last(attempt(M.unsubscribe, 'INBOX')))
M.select('INBOX', readonly=True)
a.append(last(attempt(M.uid, 'STORE', '1', '+FLAGS', '(\\Flagged)')))
typ, data = M.uid('FETCH', '1:*', '(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
after = [d[1].decode().strip() for d in data if isinstance(d, tuple)]
print(json.dumps({'Answers': a, 'After': after}))
`, &got)
	for i, w := range want {
		if i >= len(got.Answers) {
			t.Fatalf("%d answers, want %d", len(got.Answers), len(want))
		}
		typ, text := got.Answers[i][0], got.Answers[i][1]
		if w.answer == "OK" {
			if typ != "OK" {
				t.Errorf("%s: %s %s, want OK (nothing is \\Deleted)", w.name, typ, text)
			}
			continue
		}
		if typ != "NO" || text != w.answer {
			t.Errorf("%s:\n got %s %q\nwant NO %q", w.name, typ, text, w.answer)
		}
		if strings.Contains(text, "TRYCREATE") {
			t.Errorf("%s: %s", w.name, text)
		}
	}
	if len(got.After) != 2 || !strings.Contains(got.After[0], "<one@") || !strings.Contains(got.After[1], "<two@") {
		t.Errorf("INBOX after the refused writes: %q", got.After)
	}
}
