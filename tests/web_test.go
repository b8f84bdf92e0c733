package tests

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/mailvault/mailvault/mailgen"
)

// webMail is an HTML mail whose script and remote image both call home to
// beacon; an archive showing it safely lets neither through.
func webMail(beacon string) string {
	return "From: Mallory <mallory@evil.example>\r\nTo: alice@acme.example\r\nSubject: Quarterly zebrafish report\r\n" +
		"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <zebra@evil.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n" +
		"--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe zebrafish numbers are in.\r\n" +
		"--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p id=x>The <b>zebrafish</b> numbers</p>" +
		"<script>fetch('" + beacon + "/script')</script><img src=\"" + beacon + "/image.png\" onerror=\"fetch('" + beacon + "/onerror')\">\r\n--b2--\r\n"
}

// TestWebBrowser drives Debian's chromium against the binary: log in, see
// the folders, list a folder with pages, search, open the hit; the HTML
// body's script and remote image reach nothing, the .eml downloads
// byte-exact, German renders, another site's forged POST is refused.
func TestWebBrowser(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (scripts/test installs it)")
	}
	// beacon counts every request a message body manages to make.
	var calls atomic.Int64
	var seen atomic.Value
	seen.Store("")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var control, forged string
	bsrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			return // the control page's, asked by the browser itself
		}
		if r.URL.Path == "/forged" {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(forged))
			return
		}
		if r.URL.Path == "/control" {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(control))
			return
		}
		calls.Add(1)
		seen.Store(seen.Load().(string) + " " + r.URL.Path)
	})}
	go bsrv.Serve(ln)
	defer bsrv.Close()
	beacon := "http://" + ln.Addr().String()

	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	g := mailgen.New(5, []string{"acme.example"}, 6)
	g.AvgSize = 2 << 10
	for range 60 {
		in.postMessage("acme", "alice@acme.example", "INBOX", g.Next().Raw)
	}
	raw := webMail(beacon)
	control = raw[strings.Index(raw, "<p id=x>"):]
	in.postMessage("acme", "alice@acme.example", "INBOX", []byte(raw))

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.Flag("lang", "en-US"), chromedp.Flag("accept-lang", "en-US"))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	// The control: the same HTML opened as it is does call home, so the
	// beacon would see a leak. (The first run starts the browser: no
	// timeout on its context.)
	if err := chromedp.Do(bctx, chromedp.Navigate(beacon+"/control")); err != nil {
		t.Fatal(err)
	}
	// Script, image and the image's onerror (an empty body is no image).
	for deadline := time.Now().Add(10 * time.Second); calls.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if calls.Load() < 3 {
		t.Fatal("the control page reached no beacon: the check below would prove nothing")
	}
	calls.Store(0)
	seen.Store("")
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	// do runs steps, each bounded, and shows where the page was on failure.
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for i, st := range steps {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := chromedp.Run(sctx, st)
			cancel()
			if err != nil {
				page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.documentElement.outerHTML`))
				t.Fatalf("%s, step %d: %v\npage: %s\n%s", what, i+1, err, page, in.logs())
			}
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	// With WEB_SCREENSHOTS=DIR the main pages are saved there (the
	// pictures in the docs are made so).
	shoot := func(name string) {
		dir := os.Getenv("WEB_SCREENSHOTS")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), png, 0o644)
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1100, 700)); err != nil {
		t.Fatal(err)
	}

	base := "http://" + in.HTTP
	do("log in and list",
		chromedp.Navigate(base+"/web/mail"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), "alice@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-secret"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS(`a.folder[data-name="INBOX"]`)),
		chromedp.Click(chromedp.CSS(`a.folder[data-name="INBOX"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.list")),
	)
	if total := text("p.total"); !strings.Contains(total, "61 messages") || !strings.Contains(total, "of 2") {
		t.Fatalf("list header %q", total)
	}
	if rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.list tbody tr").length`)); err != nil || rows != 50 {
		t.Fatalf("first page has %d rows (%v)", rows, err)
	}
	// The index catches up shortly after ingest: search until it has.
	var total string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		err = chromedp.Do(ctx,
			chromedp.SetValue(chromedp.ID("q"), "zebrafish"),
			chromedp.Click(chromedp.ID("search")),
			chromedp.WaitVisible(chromedp.CSS("p.total")),
		)
		if err != nil {
			t.Fatal(err)
		}
		if total = text("p.total"); strings.HasPrefix(total, "1 hits") {
			break
		}
	}
	if !strings.HasPrefix(total, "1 hits") {
		t.Fatalf("search never found the message: %q", total)
	}
	shoot("web-search.png")
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("a.msg")),
		chromedp.WaitVisible(chromedp.ID("subject")),
		chromedp.WaitReady(chromedp.ID("htmlbody")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if subject, plain := text("#subject"), text("#plain"); subject != "Quarterly zebrafish report" || !strings.Contains(plain, "The zebrafish numbers are in.") {
		t.Fatalf("message view: %q %q", subject, plain)
	}
	shoot("web-message.png")
	// The frame is served the body without its script ...
	if src := frameSource(ctx, t); !strings.Contains(src, "<b>zebrafish</b>") || strings.Contains(src, "<script") {
		t.Fatalf("frame body: %s", src)
	}
	// ... and nothing in it called out.
	time.Sleep(2 * time.Second) // the frame has loaded and tried what it could
	if n := calls.Load(); n != 0 {
		t.Fatalf("the HTML body reached the network %d times:%s", n, seen.Load())
	}
	// The .eml, fetched by the page as the download link does, is the
	// message as archived.
	b64, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.getElementById("eml").href).then(r => r.arrayBuffer()).then(b => {
		let s = ""; new Uint8Array(b).forEach(c => s += String.fromCharCode(c)); return btoa(s) })`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := base64.StdEncoding.DecodeString(b64); string(got) != raw {
		t.Fatalf(".eml differs from the archived message: %d bytes, want %d", len(got), len(raw))
	}
	err = chromedp.Do(ctx,
		// SetValue fires the change event, on which the switch submits.
		chromedp.SetValue(chromedp.ID("lang"), "de"),
		chromedp.Sleep(time.Second),
		chromedp.WaitVisible(chromedp.ID("logout")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if logout := text("#logout"); logout != "Abmelden" {
		t.Fatalf("German: %q", logout)
	}
	// Another site's page that posts the logout form with a guessed token
	// gets a refusal, and the session lives on.
	forged = `<form id=f method=post action="` + base + `/web/logout"><input name=csrf value=guess></form><script>document.getElementById("f").submit()</script>`
	do("forged POST from another origin",
		chromedp.Navigate(beacon+"/forged"),
		chromedp.Sleep(time.Second),
	)
	if page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(page, "another site") && !strings.Contains(page, "anderen Seite") && !strings.Contains(page, "not logged in") {
		t.Fatalf("the forged POST was not refused: %q", page)
	}
	do("still logged in", chromedp.Navigate(base+"/web/mail"), chromedp.WaitVisible(chromedp.ID("logout")))

	// An app password made in the browser opens the archive over IMAP.
	do("make an app password",
		chromedp.Click(chromedp.ID("nav-account")),
		chromedp.WaitVisible(chromedp.ID("app-name")),
		chromedp.SendKeys(chromedp.ID("app-name"), "imaplib"),
		chromedp.Click(chromedp.ID("app-submit")),
		chromedp.WaitVisible(chromedp.ID("app-secret")),
	)
	secret := text("#app-secret")
	var imapGot []string
	in.imaplib("alice@acme.example", secret, `print(json.dumps([str(M.select("INBOX")[1][0], "ascii")]))`, &imapGot)
	if len(imapGot) != 1 || imapGot[0] != "61" {
		t.Fatalf("IMAP with the app password: %v", imapGot)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login"))); err != nil {
		t.Fatalf("logout: %v", err)
	}

	// The admin console: a reader has no link to it; an admin adds a user
	// with the form and finds them in the list, in English again.
	in.mustCLI("user", "add", "-tenant", "acme", "admin@acme.example", "-password", "admin-secret", "-role", "admin", "-no-mailbox")
	do("admin logs in",
		chromedp.SetValue(chromedp.ID("lang"), "en"),
		chromedp.Sleep(time.Second),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), "admin@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), "admin-secret"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("nav-admin")),
		chromedp.Click(chromedp.ID("nav-admin")),
		chromedp.WaitVisible(chromedp.ID("usage")),
	)
	if msgs := text("#u-messages"); msgs != "61" {
		t.Fatalf("admin overview: %q messages", msgs)
	}
	do("admin adds a user",
		chromedp.Navigate(base+"/web/admin/users"),
		chromedp.WaitVisible(chromedp.ID("nu-login")),
		chromedp.SendKeys(chromedp.ID("nu-login"), "new.hire@acme.example"),
		chromedp.SendKeys(chromedp.ID("nu-password"), "new-hire-secret"),
		chromedp.Click(chromedp.ID("nu-submit")),
		chromedp.WaitVisible(chromedp.ID("ok")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-login="new.hire@acme.example"]`)),
	)
	shoot("web-admin.png")
	if got := in.mustCLI("user", "list", "-tenant", "acme"); !strings.Contains(got, "new.hire@acme.example") {
		t.Fatalf("the user added in the browser is not in the archive:\n%s", got)
	}

	// Two-step login: set up from the shown key, then a login asks for
	// the code after the password.
	do("set up two-step login",
		chromedp.Click(chromedp.ID("nav-account")),
		chromedp.WaitVisible(chromedp.ID("totp-begin")),
		chromedp.Click(chromedp.ID("totp-begin")),
		chromedp.WaitVisible(chromedp.ID("totp-qr")),
	)
	key := text("#totp-secret")
	now := time.Now()
	first, err := totp.GenerateCode(key, now)
	if err != nil {
		t.Fatal(err)
	}
	do("confirm two-step login",
		chromedp.SendKeys(chromedp.ID("totp-code"), first),
		chromedp.Click(chromedp.ID("totp-confirm")),
		chromedp.WaitVisible(chromedp.ID("totp-on")),
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), "admin@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), "admin-secret"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("code")),
	)
	// The code of the next step: the one of the set-up is spent.
	second, _ := totp.GenerateCode(key, now.Add(30*time.Second))
	do("log in with the code",
		chromedp.SendKeys(chromedp.ID("code"), second),
		chromedp.Click(chromedp.ID("totp-submit")),
		chromedp.WaitVisible(chromedp.ID("nav-admin")),
	)
}

// frameSource reads the frame's document through a same-session fetch of
// its URL (the sandboxed frame is another origin to the page).
func frameSource(ctx context.Context, t *testing.T) string {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.getElementById("htmlbody").src).then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Logf("frame source: %v", err)
	}
	return s
}
