package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mailvault/mailvault/pull"
)

func cmdPull(ctx context.Context, args []string) error {
	op, args, err := sub(args, "run, profiles, show, put, delete")
	if err != nil {
		return err
	}
	fs := newFlags("pull "+op, "pull run -tenant T PROFILE | profiles -tenant T | show -tenant T PROFILE | put -tenant T PROFILE -file PROFILE.json | delete -tenant T PROFILE")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	file := fs.String("file", "", "profile as JSON (see docs/import.md)")
	c, pos, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	if op != "profiles" {
		if err := need(pos, 1, "profile name"); err != nil {
			return err
		}
	}
	switch op {
	case "run":
		var r pull.Report
		if err := c.Do("POST", tenantPath(*tenant, "pull", "profiles", pos[0], "run"), nil, &r); err != nil {
			return err
		}
		if *tf.json {
			printJSON(r)
		} else {
			writePullReport(os.Stdout, &r)
		}
		if r.Error != "" {
			return fmt.Errorf("pull %s failed: %s", pos[0], r.Error)
		}
		if len(r.Errors) > 0 {
			return fmt.Errorf("pull %s: %d message(s) not archived; the next run tries them again", pos[0], len(r.Errors))
		}
	case "profiles":
		var out any
		if err := c.Do("GET", tenantPath(*tenant, "pull", "profiles"), nil, &out); err != nil {
			return err
		}
		printJSON(out)
	case "show":
		var out any
		if err := c.Do("GET", tenantPath(*tenant, "pull", "profiles", pos[0]), nil, &out); err != nil {
			return err
		}
		printJSON(out)
	case "put":
		if *file == "" {
			return fmt.Errorf("-file PROFILE.json is required")
		}
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		var p json.RawMessage
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		if err := c.Do("PUT", tenantPath(*tenant, "pull", "profiles", pos[0]), p, nil); err != nil {
			return err
		}
		fmt.Printf("pull profile %s saved; run it with `mailvault pull run -tenant %s %s`\n", pos[0], *tenant, pos[0])
	case "delete":
		if err := c.Do("DELETE", tenantPath(*tenant, "pull", "profiles", pos[0]), nil, nil); err != nil {
			return err
		}
		fmt.Printf("pull profile %s deleted; the mail it archived stays\n", pos[0])
	default:
		return fmt.Errorf("unknown sub-command %q: want run, profiles, show, put or delete", op)
	}
	return nil
}

func writePullReport(w io.Writer, r *pull.Report) {
	var b strings.Builder
	fmt.Fprintf(&b, "pull %s of tenant %s: %d folders, %d fetched, %d archived, %d duplicates, %d errors in %s\n",
		r.Profile, r.Tenant, len(r.Folders), r.Fetched, r.Archived, r.Duplicates, len(r.Errors), time.Duration(r.Duration).Round(time.Millisecond))
	for _, f := range r.Folders {
		fmt.Fprintf(&b, "  %-30s -> %-30s %6d fetched %6d archived %6d duplicates", f.Source, f.Archive, f.Fetched, f.Archived, f.Duplicates)
		if f.Restarted {
			b.WriteString("  (UIDVALIDITY changed: fetched from the start)")
		}
		b.WriteByte('\n')
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "FAILED: %s\n", r.Error)
	}
	io.WriteString(w, b.String())
}
