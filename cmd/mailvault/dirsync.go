package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/mailvault/mailvault/dirsync"
)

func cmdDirsync(ctx context.Context, args []string) error {
	op, args, err := sub(args, "run, profiles, show, put, delete")
	if err != nil {
		return err
	}
	fs := newFlags("dirsync "+op, "dirsync run -tenant T [-profile P] [-dry-run] | profiles -tenant T | show -tenant T PROFILE | put -tenant T PROFILE -file PROFILE.json | delete -tenant T PROFILE")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	profile := fs.String("profile", "", "run only this profile (default: every profile of the tenant)")
	dryRun := fs.Bool("dry-run", false, "print the changes a run would make, change nothing")
	file := fs.String("file", "", "profile as JSON (see docs/directory.md)")
	c, pos, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	switch op {
	case "run":
		q := ""
		if *dryRun {
			q = "?dry_run=true"
		}
		var reports []*dirsync.Report
		if *profile != "" {
			var r dirsync.Report
			if err := c.Do("POST", tenantPath(*tenant, "dirsync", "profiles", *profile, "run")+q, nil, &r); err != nil {
				return err
			}
			reports = append(reports, &r)
		} else if err := c.Do("POST", tenantPath(*tenant, "dirsync", "run")+q, nil, &reports); err != nil {
			return err
		}
		failed := 0
		for _, r := range reports {
			if *tf.json {
				printJSON(r)
			} else if err := r.WriteText(os.Stdout); err != nil {
				return err
			}
			if r.Error != "" {
				failed++
			}
		}
		if len(reports) == 0 {
			fmt.Printf("tenant %s has no directory sync profile (add one with `mailvault dirsync put`)\n", *tenant)
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d directory sync run(s) failed", failed, len(reports))
		}
	case "profiles":
		var out any
		if err := c.Do("GET", tenantPath(*tenant, "dirsync", "profiles"), nil, &out); err != nil {
			return err
		}
		printJSON(out)
	case "show":
		if err := need(pos, 1, "profile name"); err != nil {
			return err
		}
		var out any
		if err := c.Do("GET", tenantPath(*tenant, "dirsync", "profiles", pos[0]), nil, &out); err != nil {
			return err
		}
		printJSON(out)
	case "put":
		if err := need(pos, 1, "profile name"); err != nil {
			return err
		}
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
		if err := c.Do("PUT", tenantPath(*tenant, "dirsync", "profiles", pos[0]), p, nil); err != nil {
			return err
		}
		fmt.Printf("directory profile %s saved; try it with `mailvault dirsync run -tenant %s -profile %s -dry-run`\n", pos[0], *tenant, pos[0])
	case "delete":
		if err := need(pos, 1, "profile name"); err != nil {
			return err
		}
		if err := c.Do("DELETE", tenantPath(*tenant, "dirsync", "profiles", pos[0]), nil, nil); err != nil {
			return err
		}
		fmt.Printf("directory profile %s deleted; its users are kept but can no longer log in\n", pos[0])
	default:
		return fmt.Errorf("unknown sub-command %q: want run, profiles, show, put or delete", op)
	}
	return nil
}
