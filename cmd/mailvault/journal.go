package main

import (
	"context"
	"fmt"
	"net/url"
)

func cmdJournal(ctx context.Context, args []string) error {
	op, args, err := sub(args, "show, allow, deny, credential, remove-credential")
	if err != nil {
		return err
	}
	fs := newFlags("journal "+op, "journal show -tenant T | allow -tenant T CIDR | deny -tenant T CIDR | credential -tenant T LOGIN [-password P] | remove-credential -tenant T LOGIN")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	password := fs.String("password", "", "password of the journal login (default: a generated one, printed once)")
	c, pos, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	switch op {
	case "show":
		var out any
		if err := c.Do("GET", tenantPath(*tenant, "journal"), nil, &out); err != nil {
			return err
		}
		printJSON(out)
	case "allow":
		if err := need(pos, 1, "network (CIDR or address)"); err != nil {
			return err
		}
		if err := c.Do("POST", tenantPath(*tenant, "journal", "networks"), map[string]string{"network": pos[0]}, nil); err != nil {
			return err
		}
		fmt.Printf("mail servers in %s may now journal to tenant %s\n", pos[0], *tenant)
	case "deny":
		if err := need(pos, 1, "network"); err != nil {
			return err
		}
		if err := c.Do("DELETE", tenantPath(*tenant, "journal", "networks")+"/"+url.PathEscape(pos[0]), nil, nil); err != nil {
			return err
		}
		fmt.Printf("%s removed from the journal allow-list of %s\n", pos[0], *tenant)
	case "credential":
		if err := need(pos, 1, "journal login (name@domain)"); err != nil {
			return err
		}
		pw, generated := *password, false
		if pw == "" {
			pw, generated = genPassword(), true
		}
		if err := c.Do("PUT", tenantPath(*tenant, "journal", "credentials", pos[0]), map[string]string{"password": pw}, nil); err != nil {
			return err
		}
		fmt.Printf("journal login %s set (SMTP AUTH PLAIN after STARTTLS)\n", pos[0])
		if generated {
			fmt.Printf("password: %s\n", pw)
		}
	case "remove-credential":
		if err := need(pos, 1, "journal login"); err != nil {
			return err
		}
		if err := c.Do("DELETE", tenantPath(*tenant, "journal", "credentials", pos[0]), nil, nil); err != nil {
			return err
		}
		fmt.Printf("journal login %s removed\n", pos[0])
	default:
		return fmt.Errorf("unknown sub-command %q: want show, allow, deny, credential or remove-credential", op)
	}
	return nil
}
