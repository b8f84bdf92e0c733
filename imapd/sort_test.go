package imapd

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailgen"
)

// threadMail is a folder whose SORT and THREAD answers are worked out by
// hand below: UIDs 1 to 10 in this order.
func threadMail() []mailgen.Message {
	type m struct{ from, subject, date, id, refs, irt string }
	ms := []m{
		{"carol", "Budget 2025", "3 Jan 2025", "a@x", "", ""},
		{"alice", "Re: Budget 2025", "5 Jan 2025", "b@x", "<a@x>", "<a@x>"},
		{"bob", "Lunch", "4 Jan 2025", "c@x", "", ""},
		{"dave", "RE: [team] Budget 2025", "6 Jan 2025", "d@x", "<a@x> <b@x>", ""},
		{"erin", "Re: Lunch", "2 Jan 2025", "e@x", "<c@x>", ""},
		{"bob", "Offsite", "1 Jan 2025", "f@x", "<missing@x>", ""},
		{"amy", "Fwd: Offsite", "7 Jan 2025", "g@x", "", ""},
		{"zed", "", "", "h@x", "", ""},
		{"ann", "Plan A", "9 Jan 2025", "i@x", "<lost@x>", ""},
		{"ben", "Plan B", "10 Jan 2025", "j@x", "", "<lost@x>"},
	}
	out := make([]mailgen.Message, len(ms))
	for i, x := range ms {
		var b strings.Builder
		fmt.Fprintf(&b, "From: %s@acme.example\r\nTo: alice@acme.example\r\n", x.from)
		if x.subject != "" {
			fmt.Fprintf(&b, "Subject: %s\r\n", x.subject)
		}
		if x.date != "" {
			fmt.Fprintf(&b, "Date: %s 12:00:00 +0000\r\n", x.date)
		}
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", x.id)
		if x.refs != "" {
			fmt.Fprintf(&b, "References: %s\r\n", x.refs)
		}
		if x.irt != "" {
			fmt.Fprintf(&b, "In-Reply-To: %s\r\n", x.irt)
		}
		// Sizes: no two alike, and not in UID order.
		fmt.Fprintf(&b, "\r\n%s\r\n", strings.Repeat("x", 10+(i*7)%10*13))
		// Arrival: the later the UID, the earlier.
		out[i] = mailgen.Message{Raw: []byte(b.String()), Date: time.Date(2025, 1, 20-i, 8, 0, 0, 0, time.UTC)}
	}
	return out
}

// SORT, ESORT and THREAD through Python's imaplib, which is not built on
// the server's library.
func TestPythonSortThread(t *testing.T) {
	bin := needTool(t, "python3")
	f := newFixture(t, 3, false)
	msgs := threadMail()
	for i := range msgs {
		if a := f.ingest(t, f.acme, "alice@acme.example", "Threads", msgs[i:i+1]); a[0].uid != uint32(i+1) {
			t.Fatalf("message %d got UID %d", i, a[0].uid)
		}
	}
	bySize := make([]string, len(msgs))
	for i := range bySize {
		bySize[i] = fmt.Sprint(i + 1)
	}
	slices.SortStableFunc(bySize, func(a, b string) int {
		var x, y int
		fmt.Sscan(a, &x)
		fmt.Sscan(b, &y)
		return len(msgs[x-1].Raw) - len(msgs[y-1].Raw)
	})
	script := filepath.Join(t.TempDir(), "sort.py")
	writeFile(t, script, pythonSortScript)
	host, port := strings.Split(f.addr, ":")[0], strings.Split(f.addr, ":")[1]
	cmd := exec.Command(bin, script, host, port, "alice@acme.example", password)
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, raw)
	}
	var out map[string]string
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	want := map[string]string{
		"caps":             "",
		"date":             "6 5 1 3 2 4 7 9 10 8",
		"reverse date":     "8 10 9 7 4 2 3 1 5 6",
		"arrival":          "10 9 8 7 6 5 4 3 2 1",
		"from":             "2 7 9 10 3 6 1 4 5 8",
		"subject":          "8 1 2 4 3 5 6 7 9 10",
		"subject rev date": "8 4 2 1 3 5 7 6 9 10",
		"size":             strings.Join(bySize, " "),
		"date uid 1:4":     "1 3 2 4",
		"uid reverse date": "8 10 9 7 4 2 3 1 5 6",
		"orderedsubject":   "(6 7)(5 3)(1 (2)(4))(9)(10)(8)",
		"references":       "(6 7)(1 2 4)(3 5)((9)(10))(8)",
		"uid references":   "(6 7)(1 2 4)(3 5)((9)(10))(8)",
		"esort":            "MIN 1 MAX 10 ALL 6,5,1,3,2,4,7,9:10,8 COUNT 10",
		"esort partial":    "PARTIAL (1:3 8,10,9)",
		"esort count":      "COUNT 2",
		"bad key":          "BAD",
	}
	for k, w := range want {
		g, ok := out[k]
		switch {
		case !ok:
			t.Errorf("%s: no answer", k)
		case k == "caps":
			for _, c := range []string{"SORT", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "LITERAL+"} {
				if !slices.Contains(strings.Fields(g), c) {
					t.Errorf("capabilities %q lack %s", g, c)
				}
			}
		case strings.HasPrefix(k, "esort"):
			if !strings.HasSuffix(g, w) || !strings.Contains(g, `(TAG "`) {
				t.Errorf("%s: %q, want it to end in %q", k, g, w)
			}
		case g != w:
			t.Errorf("%s: %q, want %q", k, g, w)
		}
	}
}

const pythonSortScript = `
import imaplib, json, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
c = imaplib.IMAP4(host, port)
c.login(user, pw)
out["caps"] = c.capability()[1][0].decode()
c.select("Threads", readonly=True)
def sort(name, crit, *search, uid=False):
    if uid:
        typ, data = c.uid("SORT", crit, "UTF-8", *search)
    else:
        typ, data = c.sort(crit, "UTF-8", *search)
    assert typ == "OK", (name, typ, data)
    out[name] = data[0].decode()
sort("date", "(DATE)", "ALL")
sort("reverse date", "(REVERSE DATE)", "ALL")
sort("arrival", "(ARRIVAL)", "ALL")
sort("from", "(FROM)", "ALL")
sort("subject", "(SUBJECT)", "ALL")
sort("subject rev date", "(SUBJECT REVERSE DATE)", "ALL")
sort("size", "(SIZE)", "ALL")
sort("date uid 1:4", "(DATE)", "UID", "1:4")
sort("uid reverse date", "(REVERSE DATE)", "ALL", uid=True)
for name, alg, uid in [("orderedsubject", "ORDEREDSUBJECT", False), ("references", "REFERENCES", False), ("uid references", "REFERENCES", True)]:
    if uid:
        typ, data = c.uid("THREAD", alg, "UTF-8", "ALL")
    else:
        typ, data = c.thread(alg, "UTF-8", "ALL")
    assert typ == "OK", (name, typ, data)
    out[name] = data[0].decode()
for name, args in [("esort", "RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL"), ("esort partial", "RETURN (PARTIAL 1:3) (REVERSE DATE) UTF-8 ALL"), ("esort count", "RETURN (COUNT) (DATE) UTF-8 UID 2:3")]:
    typ, data = c._simple_command("SORT", args)
    assert typ == "OK", (name, typ, data)
    typ, data = c._untagged_response(typ, data, "ESEARCH")
    out[name] = data[-1].decode()
try:
    c.sort("(COLOR)", "UTF-8", "ALL")
except imaplib.IMAP4.error as e:
    out["bad key"] = "BAD" if "BAD" in str(e) or "rror" in str(e) else str(e)
c.logout()
print(json.dumps(out))
`

// TestSortLongSubjects: subjects that agree in far more than the bytes a
// sort row holds, in upper and lower case, sort as their full upper-case
// base subjects do, equal ones in folder order, in both directions.
func TestSortLongSubjects(t *testing.T) {
	f := newFixture(t, 1, false)
	rng := rand.New(rand.NewPCG(5, 6))
	words := []string{"quarterly", "Quarterly", "report", "rePort", "a", "b"}
	var raws []string
	var subjects []string
	for i := range 400 { // more than radixSort sorts by comparison
		// Differing in the first 8 bytes, the next 8, and after 16.
		s := []string{"Shared prefix of more than sixteen bytes", "Shared prefiy", "Shared prefix of", "Shared prefix of more tham", "Sh", "zz"}[rng.IntN(6)]
		for range 1 + rng.IntN(4) {
			s += " " + words[rng.IntN(len(words))]
		}
		raws = append(raws, wireMessage(s, fmt.Sprintf("long%d@acme.example", i), "aGk="))
		subjects = append(subjects, strings.ToUpper(s))
	}
	arch := f.wireFolder(t, "Long", raws...)
	// By sequence number: messages in UID order; arch is by UID.
	seq := make([]int, len(arch))
	for i := range arch {
		for k, r := range raws {
			if string(arch[i].raw) == r {
				seq[i] = k
			}
		}
	}
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	c.OK("EXAMINE Long")
	for _, reverse := range []bool{false, true} {
		want := make([]int, len(arch))
		for i := range want {
			want[i] = i
		}
		slices.SortStableFunc(want, func(a, b int) int {
			d := strings.Compare(subjects[seq[a]], subjects[seq[b]])
			if reverse {
				d = -d
			}
			return d
		})
		var ws []string
		for _, i := range want {
			ws = append(ws, fmt.Sprint(i+1))
		}
		crit := "(SUBJECT)"
		if reverse {
			crit = "(REVERSE SUBJECT)"
		}
		got := c.OK("SORT " + crit + " UTF-8 ALL")
		if len(got) != 1 || got[0] != "* SORT "+strings.Join(ws, " ") {
			t.Errorf("SORT %s: %q, want %q", crit, got, strings.Join(ws, " "))
		}
	}
}
