package tests

import (
	"encoding/json"
	"net"
	"os/exec"
	"strings"
)

// imaplibPrelude logs in with python3's imaplib and defines helpers for the
// scripts the tests run; each script prints one JSON value.
const imaplibPrelude = `
import imaplib, json, sys
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
M = imaplib.IMAP4(host, port)
M.login(user, password)
def text(data):
    out = []
    for d in data:
        if isinstance(d, tuple):
            out.append(d[0].decode() + d[1].decode('utf-8', 'replace'))
        elif d is not None:
            out.append(d.decode('utf-8', 'replace'))
    return out
def attempt(f, *args):
    try:
        typ, data = f(*args)
        return [typ] + text(data)
    except imaplib.IMAP4.error as e:
        return ['NO', str(e)]
`

// imaplib runs script after imaplibPrelude as user against the instance's
// IMAP port and decodes the JSON it prints into out; args follow the login
// in sys.argv.
func (in *instance) imaplib(user, password, script string, out any, args ...string) {
	in.t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		in.t.Skip("python3 not installed")
	}
	host, port, _ := net.SplitHostPort(in.IMAP)
	cmd := exec.Command(py, append([]string{"-c", imaplibPrelude + script, host, port, user, password}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		in.t.Fatalf("imaplib script: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		in.t.Fatalf("imaplib script output %q: %v", b, err)
	}
}
