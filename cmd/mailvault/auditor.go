package main

import (
	"context"
	"fmt"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server"
)

func cmdAuditor(ctx context.Context, args []string) error {
	op, args, err := sub(args, "add")
	if err != nil {
		return err
	}
	if op != "add" {
		return fmt.Errorf("unknown sub-command %q: want add", op)
	}
	fs := newFlags("auditor add", "auditor add -tenant T LOGIN -password P (-mailbox ADDRESS... | -all) [-since DATE] [-until DATE] -expires DATE")
	cf := addClientFlags(fs)
	tenant := fs.String("tenant", "", "tenant name (required)")
	password := fs.String("password", "", "password of the account (required)")
	var mailboxes multiFlag
	fs.Var(&mailboxes, "mailbox", "archive mailbox the auditor may read (repeatable)")
	all := fs.Bool("all", false, "every archive mailbox")
	since := fs.String("since", "", "first day of the period (messages received from then on; YYYY-MM-DD or RFC 3339)")
	until := fs.String("until", "", "end of the period (exclusive)")
	expires := fs.String("expires", "", "when the account stops working (required)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *tenant == "" || len(pos) != 1 || *password == "" || *expires == "" {
		return fmt.Errorf("need -tenant, one LOGIN, -password and -expires (see -help)")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var u backend.User
	req := server.AuditorRequest{Login: pos[0], Password: *password, Mailboxes: mailboxes, All: *all, Since: *since, Until: *until, Expires: *expires}
	if err := c.Do("POST", tenantPath(*tenant, "auditors"), req, &u); err != nil {
		return err
	}
	if *cf.json {
		printJSON(u)
		return nil
	}
	what := fmt.Sprint(u.Scope.Mailboxes)
	if u.Scope.All {
		what = "all archive mailboxes"
	}
	fmt.Printf("auditor %s: reads %s, received %s to %s, until %s; every access is audited\n", u.Login, what,
		fmtScopeTime(u.Scope.Since), fmtScopeTime(u.Scope.Until), u.Scope.Expires.Format("2006-01-02 15:04 MST"))
	return nil
}

func fmtScopeTime(t time.Time) string {
	if t.IsZero() {
		return "any time"
	}
	return t.Format(time.RFC3339)
}
