package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/stepup-auth/stepup/client"
)

func tenantsCreateCmd() command {
	return command{
		path:    "tenants create",
		flags:   "[--sender-name NAME]",
		args:    "<name>",
		nargs:   1,
		summary: "create a tenant (an organisation); prints its id",
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			sender := fs.String("sender-name", "", "`name` the tenant's e-mails and SMS come from (default: the tenant's name)")
			return func(ctx context.Context, c *cli, args []string) error {
				t, err := c.api.CreateTenant(ctx, args[0], *sender)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				if err := kv(c.stdout, [][2]string{{"id", t.ID}, {"name", t.Name}, {"sender_name", t.SenderName}, {"created_at", when(t.CreatedAt)}}); err != nil {
					return err
				}
				fmt.Fprintf(c.stderr, "Next: stepupctl keys create %s --kind manager\n", t.ID)
				return nil
			}
		},
	}
}

func tenantsListCmd() command {
	return command{
		path:    "tenants list",
		summary: "list every tenant",
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return func(ctx context.Context, c *cli, _ []string) error {
				ts, err := c.api.Tenants(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				rows := make([][]string, len(ts))
				for i, t := range ts {
					rows[i] = []string{t.ID, t.Name, t.SenderName, when(t.CreatedAt)}
				}
				return table(c.stdout, []string{"ID", "NAME", "SENDER NAME", "CREATED"}, rows)
			}
		},
	}
}

func keysCreateCmd() command {
	return command{
		path:    "keys create",
		flags:   "--kind app|manager [--label TEXT]",
		args:    "<tenant-id>",
		nargs:   1,
		summary: "create an app or manager key for a tenant; the secret is shown once",
		help: `An app key is for the host application's backend (login evaluation, the 2FA
lifecycle); a manager key is for the tenant's account managers (policy, users,
events). Keep the secret now: only its hash is stored.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			kind := fs.String("kind", "", "`kind` of key: app or manager (required)")
			label := fs.String("label", "", "a `label` to recognise the key by")
			return func(ctx context.Context, c *cli, args []string) error {
				switch client.KeyKind(*kind) {
				case client.KeyApp, client.KeyManager:
				case "":
					return usagef("keys create", "--kind is required: app or manager")
				default:
					return usagef("keys create", "--kind %q: want app or manager", *kind)
				}
				k, err := c.api.CreateKey(ctx, args[0], client.KeyKind(*kind), *label)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				if err := kv(c.stdout, [][2]string{{"id", k.ID}, {"tenant", k.Tenant}, {"kind", string(k.Kind)},
					{"label", orDash(k.Label)}, {"secret", k.Secret}}); err != nil {
					return err
				}
				fmt.Fprintln(c.stderr, "Store the secret now: it is not shown again.")
				return nil
			}
		},
	}
}

func keysListCmd() command {
	return command{
		path:    "keys list",
		args:    "<tenant-id>",
		nargs:   1,
		summary: "list a tenant's keys (never their secrets)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return func(ctx context.Context, c *cli, args []string) error {
				ks, err := c.api.Keys(ctx, args[0])
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				rows := make([][]string, len(ks))
				for i, k := range ks {
					rows[i] = []string{k.ID, string(k.Kind), orDash(k.Label), when(k.CreatedAt)}
				}
				return table(c.stdout, []string{"ID", "KIND", "LABEL", "CREATED"}, rows)
			}
		},
	}
}

func keysRevokeCmd() command {
	return command{
		path:    "keys revoke",
		args:    "<tenant-id> <key-id>",
		nargs:   2,
		summary: "revoke a key; it stops working at once",
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return func(ctx context.Context, c *cli, args []string) error {
				if err := c.api.RevokeKey(ctx, args[0], args[1]); err != nil {
					return err
				}
				if c.json() {
					return c.printRaw() // the API answers 204, no body
				}
				_, err := fmt.Fprintf(c.stdout, "Revoked key %s of tenant %s.\n", args[1], args[0])
				return err
			}
		},
	}
}
