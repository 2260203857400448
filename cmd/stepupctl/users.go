package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/stepup-auth/stepup/client"
)

func usersShowCmd() command {
	return command{
		path:    "users show",
		args:    "<user-id>",
		nargs:   1,
		summary: "show a user's 2FA status: factors, devices, grace logins left",
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return func(ctx context.Context, c *cli, args []string) error {
				u, err := c.api.AdminUser(ctx, args[0])
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				return printUser(c.stdout, u)
			}
		},
	}
}

func usersResetCmd() command {
	return command{
		path:    "users reset",
		flags:   "--reason TEXT",
		args:    "<user-id>",
		nargs:   1,
		summary: "turn a user's 2FA off: clear factors, backup codes and devices (lost phone)",
		help: `The user can sign in without a second factor and enrol again; in required
mode they must enrol at their next login. The reason is recorded in the audit
log and mailed to the user and the tenant's managers.

Example:
  stepupctl users reset alice --reason "lost phone, identity checked by phone call"`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			reason := fs.String("reason", "", "`text` saying why (required; audited and mailed)")
			return func(ctx context.Context, c *cli, args []string) error {
				if strings.TrimSpace(*reason) == "" {
					return usagef("users reset", "--reason is required: say why (it is audited and mailed)")
				}
				u, err := c.api.ResetUser(ctx, args[0], *reason)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				fmt.Fprintf(c.stdout, "Reset 2FA of %s: factors, backup codes and remembered devices cleared.\n\n", u.UserID)
				return printUser(c.stdout, u)
			}
		},
	}
}

func usersDisableAllCmd() command {
	return command{
		path:    "users disable-all",
		flags:   "--reason TEXT [--group G]",
		summary: "reset the 2FA of every enrolled user of the tenant, or of one group",
		help: `Every enrolled user (of --group, if given) loses their factors, backup codes
and remembered devices and is told by e-mail; each reset is audited. To stop
asking for codes altogether, also set the mode: stepupctl policy set --mode off.`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			reason := fs.String("reason", "", "`text` saying why (required; audited and mailed)")
			group := fs.String("group", "", "only the users of this policy `group`")
			return func(ctx context.Context, c *cli, _ []string) error {
				if strings.TrimSpace(*reason) == "" {
					return usagef("users disable-all", "--reason is required: say why (it is audited and mailed)")
				}
				r, err := c.api.DisableAll(ctx, *reason, *group)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				who := "users"
				if r.Reset == 1 {
					who = "user"
				}
				if *group != "" {
					who += " of group " + *group
				}
				_, err = fmt.Fprintf(c.stdout, "Reset 2FA of %d enrolled %s.\n", r.Reset, who)
				return err
			}
		},
	}
}

// printUser shows a user's 2FA status as name/value lines.
func printUser(w io.Writer, u client.User) error {
	factors := "none"
	if len(u.Factors) > 0 {
		fs := make([]string, len(u.Factors))
		for i, f := range u.Factors {
			fs[i] = string(f.Channel)
			if f.Destination != "" {
				fs[i] += " " + f.Destination
			}
			fs[i] += " (since " + when(f.AddedAt) + ")"
		}
		factors = strings.Join(fs, ", ")
	}
	grace := "-"
	if u.GraceLoginsLeft != nil {
		grace = fmt.Sprint(*u.GraceLoginsLeft)
	}
	return kv(w, [][2]string{
		{"user_id", u.UserID},
		{"email", orDash(u.Profile.Email)},
		{"display_name", orDash(u.Profile.DisplayName)},
		{"group", orDash(u.Group)},
		{"mode", u.Mode},
		{"enrolled", yesNo(u.Enrolled)},
		{"factors", factors},
		{"backup_codes_left", fmt.Sprint(u.BackupCodesLeft)},
		{"remembered_devices", fmt.Sprint(u.RememberedDevices)},
		{"grace_logins_left", grace},
		{"phone_change_pending", yesNo(u.PhoneChangePending)},
		{"email_change_pending", yesNo(u.EmailChangePending)},
		{"created_at", when(u.CreatedAt)},
		{"updated_at", when(u.UpdatedAt)},
	})
}
