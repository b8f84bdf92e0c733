package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/server"
)

// clientFlags are the flags every administration command takes to find the
// running server.
type clientFlags struct {
	server, token, config *string
	json                  *bool
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		server: fs.String("server", "", "management API base URL (default: from the config, http://127.0.0.1:8080)"),
		token:  fs.String("token", "", "provider token (default: $MAILVAULT_TOKEN, else provider.token in the data directory)"),
		config: fs.String("config", "", "configuration file of the server, to find its address and data directory"),
		json:   fs.Bool("json", false, "print the server's JSON answer"),
	}
}

// endpoint is the configuration and the management API's base URL.
func (cf clientFlags) endpoint() (conf.Config, string, error) {
	cfg, err := conf.Load(*cf.config, os.Environ())
	if err != nil {
		return cfg, "", err
	}
	base := *cf.server
	if base == "" {
		base = "http://" + cfg.HTTP.Listen
	}
	return cfg, base, nil
}

func (cf clientFlags) client() (*server.Client, error) {
	cfg, base, err := cf.endpoint()
	if err != nil {
		return nil, err
	}
	tok := *cf.token
	if tok == "" {
		tok = os.Getenv("MAILVAULT_TOKEN")
	}
	if tok == "" {
		if tok, err = server.ReadToken(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("%w; pass -token or set MAILVAULT_TOKEN", err)
		}
	}
	return &server.Client{BaseURL: base, Token: tok, Operator: operator()}, nil
}

// operator names who runs the command, for the server's audit log: the OS
// user and host.
func operator() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = strconv.Itoa(os.Getuid())
	}
	if host, err := os.Hostname(); err == nil {
		name += "@" + host
	}
	return name
}

func printJSON(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// present makes a request and prints its answer: as the server's JSON
// with -json or when there is no text form, else with text.
func present[T any](c *server.Client, asJSON bool, method, path string, body any, text func(T) error) error {
	var out T
	if err := c.Do(method, path, body, &out); err != nil {
		return err
	}
	if asJSON || text == nil {
		printJSON(out)
		return nil
	}
	return text(out)
}

// jsonArg is the value of flag -name as JSON; empty is nil.
func jsonArg(name, v string) (json.RawMessage, error) {
	if v == "" {
		return nil, nil
	}
	if !json.Valid([]byte(v)) {
		return nil, fmt.Errorf("-%s is not JSON", name)
	}
	return json.RawMessage(v), nil
}

func need(args []string, n int, what string) error {
	if len(args) < n {
		return fmt.Errorf("missing %s (see -help)", what)
	}
	return nil
}

func tenantPath(t string, rest ...string) string {
	p := "/api/v1/tenants/" + url.PathEscape(t)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// sub takes the sub-command of a grouped command (user add, ...); -help
// there lists the sub-commands.
func sub(args []string, cmds string) (string, []string, error) {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Printf("Sub-commands: %s.\nRun `mailvault <command> <sub-command> -help` for the flags of one.\n", cmds)
		return "", nil, flag.ErrHelp
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, fmt.Errorf("missing sub-command: one of %s", cmds)
	}
	return args[0], args[1:], nil
}

// show prints an answer's value for a table: "-" for nothing (no <nil>,
// no []).
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return x
	case []any:
		if len(x) == 0 {
			return "-"
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

func cmdConfig(ctx context.Context, args []string) error {
	if len(args) == 1 && args[0] == "example" {
		fmt.Print(conf.Example())
		return nil
	}
	return fmt.Errorf("usage: mailvault config example")
}

func cmdTenant(ctx context.Context, args []string) error {
	op, args, err := sub(args, "create, list, show, set, delete, undelete")
	if err != nil {
		return err
	}
	fs := newFlags("tenant "+op, "tenant create NAME [-domain D]... [-max-users N] [-max-mailboxes N] [-max-bytes N] | list | show NAME | set NAME [-auto-mailboxes=true|false] [-max-...] | delete NAME [-grace 720h] | undelete NAME")
	cf := addClientFlags(fs)
	grace := fs.Duration("grace", 30*24*time.Hour, "delete: how long the tenant stays (and the deletion can be cancelled) before it and its keys are deleted")
	var domains multiFlag
	fs.Var(&domains, "domain", "domain of the tenant (repeatable; default: the tenant name)")
	maxUsers := fs.Int("max-users", 0, "user quota (0 = unlimited)")
	maxMailboxes := fs.Int("max-mailboxes", 0, "archive mailbox quota (0 = unlimited)")
	maxBytes := fs.Int64("max-bytes", 0, "stored raw bytes quota (0 = unlimited)")
	auto := fs.String("auto-mailboxes", "", "true: create an archive mailbox for unknown addresses of the tenant's domains")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch op {
	case "create":
		if err := need(pos, 1, "tenant name"); err != nil {
			return err
		}
		var out map[string]any
		req := server.TenantRequest{Name: pos[0], Domains: domains}
		req.Quotas.Users, req.Quotas.Mailboxes, req.Quotas.Bytes = *maxUsers, *maxMailboxes, *maxBytes
		if err := c.Do("POST", "/api/v1/tenants", req, &out); err != nil {
			return err
		}
		fmt.Printf("tenant %s created, domains %v\n", out["name"], out["domains"])
	case "list":
		return present(c, *cf.json, "GET", "/api/v1/tenants", nil, func(out []map[string]any) error {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TENANT\tDOMAINS\tCREATED")
			for _, t := range out {
				fmt.Fprintf(tw, "%v\t%v\t%v\n", t["name"], t["domains"], t["created"])
			}
			return tw.Flush()
		})
	case "show":
		if err := need(pos, 1, "tenant name"); err != nil {
			return err
		}
		return present[any](c, true, "GET", tenantPath(pos[0]), nil, nil)
	case "set":
		if err := need(pos, 1, "tenant name"); err != nil {
			return err
		}
		var patch server.TenantPatch
		if *auto != "" {
			b := *auto == "true"
			patch.AutoMailboxes = &b
		}
		fs.Visit(func(f *flag.Flag) {
			if strings.HasPrefix(f.Name, "max-") {
				patch.Quotas = &backend.Quotas{Users: *maxUsers, Mailboxes: *maxMailboxes, Bytes: *maxBytes}
			}
		})
		return present[any](c, true, "PATCH", tenantPath(pos[0]), patch, nil)
	case "delete":
		if err := need(pos, 1, "tenant name"); err != nil {
			return err
		}
		var out map[string]any
		if err := c.Do("POST", tenantPath(pos[0], "delete"), server.TenantDeletion{Grace: grace.String()}, &out); err != nil {
			return err
		}
		fmt.Printf("tenant %s, its files and its keys will be deleted after %s (unless a legal hold is active then); `mailvault tenant undelete %s` cancels\n", pos[0], out["delete_after"], pos[0])
	case "undelete":
		if err := need(pos, 1, "tenant name"); err != nil {
			return err
		}
		if err := c.Do("POST", tenantPath(pos[0], "undelete"), nil, nil); err != nil {
			return err
		}
		fmt.Printf("deletion of tenant %s cancelled\n", pos[0])
	default:
		return fmt.Errorf("unknown sub-command %q: want create, list, show, set, delete or undelete", op)
	}
	return nil
}

func cmdDomain(ctx context.Context, args []string) error {
	op, args, err := sub(args, "add")
	if err != nil {
		return err
	}
	fs := newFlags("domain "+op, "domain add -tenant T DOMAIN")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	if op != "add" {
		return fmt.Errorf("unknown sub-command %q: want add", op)
	}
	c, pos, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	if err := need(pos, 1, "domain"); err != nil {
		return err
	}
	if err := c.Do("POST", tenantPath(*tenant, "domains"), map[string]string{"domain": pos[0]}, nil); err != nil {
		return err
	}
	fmt.Printf("domain %s added to tenant %s\n", pos[0], *tenant)
	return nil
}

func genPassword() string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func cmdUser(ctx context.Context, args []string) error {
	op, args, err := sub(args, "add, list, passwd, delete")
	if err != nil {
		return err
	}
	fs := newFlags("user "+op, "user add -tenant T LOGIN [-password P] [-role R]... [-alias A]... [-no-mailbox] | list -tenant T | passwd -tenant T LOGIN [-password P] | delete -tenant T LOGIN")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	password := fs.String("password", "", "password (default: a generated one, printed once)")
	var roles, aliases multiFlag
	fs.Var(&roles, "role", "role: admin, reader, compliance or auditor (repeatable; default reader)")
	fs.Var(&aliases, "alias", "alias address of the user's archive mailbox (repeatable)")
	noMailbox := fs.Bool("no-mailbox", false, "do not create the user's own archive mailbox")
	c, pos, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	switch op {
	case "add":
		if err := need(pos, 1, "login (name@domain)"); err != nil {
			return err
		}
		pw, generated := *password, false
		if pw == "" {
			pw, generated = genPassword(), true
		}
		var out map[string]any
		if err := c.Do("POST", tenantPath(*tenant, "users"), server.UserRequest{Login: pos[0], Password: pw, Roles: roles, NoMailbox: *noMailbox, Aliases: aliases}, &out); err != nil {
			return err
		}
		fmt.Printf("user %s created with roles %v\n", out["login"], out["roles"])
		if generated {
			fmt.Printf("password: %s\n(shown once; change it with `mailvault user passwd`)\n", pw)
		}
	case "list":
		return present(c, *tf.json, "GET", tenantPath(*tenant, "users"), nil, func(out []map[string]any) error {
			var groups []backend.Group
			if err := c.Do("GET", tenantPath(*tenant, "groups"), nil, &groups); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LOGIN\tROLES\tGROUPS (ROLES)\tDISABLED")
			for _, u := range out {
				var via []string
				for _, g := range groups {
					if slices.Contains(g.Members, fmt.Sprint(u["login"])) {
						roles := make([]string, len(g.Roles))
						for i, r := range g.Roles {
							roles[i] = string(r)
						}
						via = append(via, g.Name+" ("+show(strings.Join(roles, ","))+")")
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", show(u["login"]), show(u["roles"]), show(strings.Join(via, ", ")), u["disabled"] == true)
			}
			return tw.Flush()
		})
	case "passwd":
		if err := need(pos, 1, "login"); err != nil {
			return err
		}
		pw, generated := *password, false
		if pw == "" {
			pw, generated = genPassword(), true
		}
		if err := c.Do("PUT", tenantPath(*tenant, "users", pos[0], "password"), map[string]string{"password": pw}, nil); err != nil {
			return err
		}
		fmt.Printf("password of %s changed\n", pos[0])
		if generated {
			fmt.Printf("password: %s\n", pw)
		}
	case "delete":
		if err := need(pos, 1, "login"); err != nil {
			return err
		}
		if err := c.Do("DELETE", tenantPath(*tenant, "users", pos[0]), nil, nil); err != nil {
			return err
		}
		fmt.Printf("user %s deleted; their archive mailbox is kept\n", pos[0])
	default:
		return fmt.Errorf("unknown sub-command %q: want add, list, passwd or delete", op)
	}
	return nil
}

func cmdGroup(ctx context.Context, args []string) error {
	op, args, err := sub(args, "add, list, member")
	if err != nil {
		return err
	}
	fs := newFlags("group "+op, "group add -tenant T NAME [-role R]... | list -tenant T | member -tenant T GROUP LOGIN [-remove]")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	var roles multiFlag
	fs.Var(&roles, "role", "role the group gives its members (repeatable)")
	remove := fs.Bool("remove", false, "remove the member instead of adding")
	c, pos, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	switch op {
	case "add":
		if err := need(pos, 1, "group name"); err != nil {
			return err
		}
		if err := c.Do("POST", tenantPath(*tenant, "groups"), map[string]any{"name": pos[0], "roles": roles}, nil); err != nil {
			return err
		}
		fmt.Printf("group %s created\n", pos[0])
	case "list":
		return present(c, *tf.json, "GET", tenantPath(*tenant, "groups"), nil, func(out []map[string]any) error {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tROLES\tMEMBERS")
			for _, g := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", show(g["name"]), show(g["roles"]), show(g["members"]))
			}
			return tw.Flush()
		})
	case "member":
		if err := need(pos, 2, "group and login"); err != nil {
			return err
		}
		if err := c.Do("POST", tenantPath(*tenant, "groups", pos[0], "members"), map[string]any{"login": pos[1], "remove": *remove}, nil); err != nil {
			return err
		}
		fmt.Printf("group %s updated\n", pos[0])
	default:
		return fmt.Errorf("unknown sub-command %q: want add, list or member", op)
	}
	return nil
}

func cmdMailbox(ctx context.Context, args []string) error {
	op, args, err := sub(args, "add, list, alias, grant, revoke")
	if err != nil {
		return err
	}
	fs := newFlags("mailbox "+op, "mailbox add -tenant T ADDRESS [-kind user|shared|journal] [-alias A]... [-owner LOGIN] | list -tenant T | alias -tenant T MAILBOX ALIAS | grant -tenant T MAILBOX USER-OR-GROUP | revoke -tenant T MAILBOX USER-OR-GROUP")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	kind := fs.String("kind", "shared", "mailbox kind: user, shared or journal")
	owner := fs.String("owner", "", "login of the user whose own archive this is")
	var aliases multiFlag
	fs.Var(&aliases, "alias", "alias address (repeatable)")
	c, pos, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	switch op {
	case "add":
		if err := need(pos, 1, "address"); err != nil {
			return err
		}
		var out map[string]any
		if err := c.Do("POST", tenantPath(*tenant, "mailboxes"), server.MailboxRequest{Address: pos[0], Kind: *kind, Aliases: aliases, Owner: *owner}, &out); err != nil {
			return err
		}
		fmt.Printf("archive mailbox %s (%s) created\n", out["address"], out["kind"])
	case "list":
		return present(c, *tf.json, "GET", tenantPath(*tenant, "mailboxes"), nil, func(out []map[string]any) error {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tKIND\tALIASES\tOWNER\tREADERS\tGROUPS")
			for _, m := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", show(m["address"]), show(m["kind"]), show(m["aliases"]), show(m["owner"]), show(m["readers"]), show(m["groups"]))
			}
			return tw.Flush()
		})
	case "alias":
		if err := need(pos, 2, "mailbox and alias"); err != nil {
			return err
		}
		if err := c.Do("POST", tenantPath(*tenant, "mailboxes", pos[0], "aliases"), map[string]string{"alias": pos[1]}, nil); err != nil {
			return err
		}
		fmt.Printf("alias %s added to %s\n", pos[1], pos[0])
	case "grant":
		if err := need(pos, 2, "mailbox and user or group"); err != nil {
			return err
		}
		if err := c.Do("POST", tenantPath(*tenant, "mailboxes", pos[0], "grants"), map[string]string{"who": pos[1]}, nil); err != nil {
			return err
		}
		fmt.Printf("%s may now read %s\n", pos[1], pos[0])
	case "revoke":
		if err := need(pos, 2, "mailbox and user or group"); err != nil {
			return err
		}
		if err := c.Do("DELETE", tenantPath(*tenant, "mailboxes", pos[0], "grants", pos[1]), nil, nil); err != nil {
			return err
		}
		fmt.Printf("%s may no longer read %s\n", pos[1], pos[0])
	default:
		return fmt.Errorf("unknown sub-command %q: want add, list, alias, grant or revoke", op)
	}
	return nil
}

func cmdStats(ctx context.Context, args []string) error {
	fs := newFlags("stats", "stats [-tenant T]")
	cf := addClientFlags(fs)
	tenant := fs.String("tenant", "", "one tenant (default: all)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	path := "/api/v1/stats"
	if *tenant != "" {
		path = tenantPath(*tenant, "stats")
	}
	return present[any](c, true, "GET", path, nil, nil)
}

func cmdVerify(ctx context.Context, args []string) error {
	fs := newFlags("verify", "verify -tenant T")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	c, _, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	var out struct {
		Report struct {
			Messages int   `json:"messages"`
			Deleted  int   `json:"deleted"`
			Bytes    int64 `json:"bytes"`
			Problems []struct {
				MID    uint64 `json:"mid"`
				Kind   string `json:"kind"`
				Detail string `json:"detail"`
			} `json:"problems"`
			Took       int64                    `json:"took_ns"`
			ChainTip   string                   `json:"chain_tip"`
			Timestamps *backend.TimestampReport `json:"timestamps"`
		} `json:"report"`
		Clean       bool     `json:"clean"`
		AuditBroken []uint64 `json:"audit_broken"`
	}
	if err := c.Do("POST", tenantPath(*tenant, "verify"), nil, &out); err != nil {
		return err
	}
	if *tf.json {
		printJSON(out)
	} else {
		r := out.Report
		fmt.Printf("tenant %s: %d messages, %d bytes checked in %.1fs; chain tip %s\n", *tenant, r.Messages, r.Bytes, float64(r.Took)/1e9, r.ChainTip)
		if r.Deleted > 0 {
			fmt.Printf("  %d messages deleted by recorded, authorised deletions\n", r.Deleted)
		}
		for _, p := range r.Problems {
			if p.MID != 0 {
				fmt.Printf("  message %d: %s: %s\n", p.MID, p.Kind, p.Detail)
			} else {
				fmt.Printf("  %s: %s\n", p.Kind, p.Detail)
			}
		}
		for _, s := range out.AuditBroken {
			fmt.Printf("  audit entry %d: altered or follows a removed entry\n", s)
		}
		if ts := r.Timestamps; ts != nil {
			for _, line := range ts.Summary {
				fmt.Println("timestamps: " + line)
			}
		}
		if out.Clean {
			fmt.Println("verify: clean")
		}
	}
	if !out.Clean {
		return fmt.Errorf("verify found %d problem(s)", len(out.Report.Problems)+len(out.AuditBroken))
	}
	return nil
}

func cmdReindex(ctx context.Context, args []string) error {
	fs := newFlags("reindex", "reindex -tenant T")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	c, _, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	var out map[string]int
	if err := c.Do("POST", tenantPath(*tenant, "reindex"), nil, &out); err != nil {
		return err
	}
	fmt.Printf("re-indexing %d messages in the background; `mailvault stats -tenant %s` shows index_pending\n", out["queued"], *tenant)
	return nil
}

func cmdReparse(ctx context.Context, args []string) error {
	fs := newFlags("reparse", "reparse -tenant T")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	c, _, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	var out map[string]int
	if err := c.Do("POST", tenantPath(*tenant, "reparse"), nil, &out); err != nil {
		return err
	}
	if *tf.json {
		printJSON(out)
		return nil
	}
	if out["outdated"] == 0 {
		fmt.Println("every summary is of the current parser")
		return nil
	}
	fmt.Printf("deriving %d summaries again in the background; `mailvault stats -tenant %s` shows summaries_outdated\n", out["outdated"], *tenant)
	return nil
}

func cmdAudit(ctx context.Context, args []string) error {
	fs := newFlags("audit", "audit -tenant T [-after SEQ]")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	after := fs.Uint64("after", 0, "show entries after this sequence number")
	c, _, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	var all []backend.AuditEntry
	for next := *after; ; {
		var page []backend.AuditEntry
		if err := c.Do("GET", fmt.Sprintf("%s?after=%d&limit=%d", tenantPath(*tenant, "audit"), next, server.AuditPageSize), nil, &page); err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		next = page[len(page)-1].Seq
		if *tf.json {
			all = append(all, page...)
			continue
		}
		for _, e := range page {
			actor := e.Actor
			if actor == "" {
				actor = "system"
			}
			fmt.Printf("%d %s %s %s %s\n", e.Seq, e.Time.Format(time.RFC3339Nano), actor, e.Action, e.Detail)
		}
	}
	if *tf.json {
		if all == nil {
			all = []backend.AuditEntry{}
		}
		printJSON(all)
	}
	return nil
}

// tenantFlags are the flags of a command that works on one tenant.
type tenantFlags struct {
	clientFlags
	tenant *string
}

func addTenantFlags(fs *flag.FlagSet) tenantFlags {
	return tenantFlags{clientFlags: addClientFlags(fs), tenant: fs.String("tenant", "", "tenant name (required)")}
}

// parse parses the command line (-tenant is required) and returns the
// positional arguments.
func (tf tenantFlags) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if *tf.tenant == "" {
		return nil, fmt.Errorf("-tenant is required")
	}
	return pos, nil
}

// connect parses the command line as parse does and returns the
// management API client and the positional arguments.
func (tf tenantFlags) connect(fs *flag.FlagSet, args []string) (*server.Client, []string, error) {
	pos, err := tf.parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	c, err := tf.client()
	return c, pos, err
}
