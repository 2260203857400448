package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/stepup-auth/stepup/client"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the API refused, the server could not be reached, a file could not be read …
	exitUsage = 2 // the command line is wrong
)

// defaultURL is where stepupd listens by default.
const defaultURL = "http://127.0.0.1:8080"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is one invocation: where output goes, the global flags and the
// client built from them.
type cli struct {
	stdout, stderr io.Writer
	env            map[string]string

	url, key, output string

	rec *recorder
	api *client.Client
}

// command is one leaf of the command tree, such as "users reset".
type command struct {
	path    string // "users reset"
	args    string // positional arguments for the usage line: "<user-id>"
	flags   string // the main flags for the overview: "--reason TEXT"
	nargs   int    // exactly this many positional arguments
	summary string // one line for the overview
	help    string // more, for --help; may be empty
	// setup registers the command's flags on fs and returns the function
	// that runs it once fs is parsed.
	setup func(fs *flag.FlagSet) func(ctx context.Context, c *cli, args []string) error
}

// commands lists every command in the order of the overview.
func commands() []command {
	return []command{
		policyGetCmd(), policySetCmd(),
		usersShowCmd(), usersResetCmd(), usersDisableAllCmd(),
		eventsCmd(),
		tenantsCreateCmd(), tenantsListCmd(),
		keysCreateCmd(), keysListCmd(), keysRevokeCmd(),
	}
}

// usageError is a mistake on the command line; it exits 2.
type usageError struct {
	cmd string // "users reset", or "" for the top level
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, a ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, a...)}
}

// run is the whole program: it parses args (without the program name),
// runs one command and returns the exit status.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, env: map[string]string{}}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			c.env[k] = v
		}
	}
	err := c.dispatch(ctx, args)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		name := "stepupctl"
		if ue.cmd != "" {
			name += " " + ue.cmd
		}
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", name, ue.msg, name)
		return exitUsage
	default:
		c.printError(err)
		return exitError
	}
}

// dispatch finds the command named by args and runs it.
func (c *cli) dispatch(ctx context.Context, args []string) error {
	top := flag.NewFlagSet("stepupctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	c.globalFlags(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.overview(c.stdout)
			return err
		}
		return usagef("", "%v", err)
	}
	args = top.Args()
	if len(args) == 0 {
		c.overview(c.stderr)
		return usagef("", "no command given")
	}
	if args[0] == "help" {
		if len(args) == 1 {
			c.overview(c.stdout)
			return nil
		}
		// "help users reset" is "users reset --help".
		return c.dispatch(ctx, append(args[1:], "--help"))
	}
	cmds := commands()
	find := func(path string) *command {
		i := slices.IndexFunc(cmds, func(cm command) bool { return cm.path == path })
		if i < 0 {
			return nil
		}
		return &cmds[i]
	}
	if cm := find(args[0]); cm != nil {
		return c.runCommand(ctx, cm, args[1:])
	}
	var group []command
	for _, cm := range cmds {
		if strings.HasPrefix(cm.path, args[0]+" ") {
			group = append(group, cm)
		}
	}
	if len(group) == 0 {
		return usagef("", "unknown command %q", args[0])
	}
	if len(args) == 1 || isHelp(args[1]) {
		w := c.stderr
		if len(args) > 1 {
			w = c.stdout
		}
		fmt.Fprintf(w, "Usage: stepupctl %s <command> [flags] [arguments]\n\nCommands:\n", args[0])
		listCommands(w, group)
		fmt.Fprintf(w, "\nRun 'stepupctl %s <command> --help' for a command's flags.\n", args[0])
		if len(args) == 1 {
			return usagef(args[0], "no %s command given", args[0])
		}
		return flag.ErrHelp
	}
	cm := find(args[0] + " " + args[1])
	if cm == nil {
		return usagef(args[0], "unknown command %q", args[1])
	}
	return c.runCommand(ctx, cm, args[2:])
}

func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "help" }

// globalFlags registers --url, --key and -o on fs. They are registered on
// every command's flag set too, so they may come before or after the
// command.
func (c *cli) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", c.url, "server base `URL` (env STEPUP_URL; default "+defaultURL+")")
	fs.StringVar(&c.key, "key", c.key, "API `key`: operator key for tenants and keys, manager key for the rest (env STEPUP_KEY)")
	fs.StringVar(&c.output, "o", c.output, "output `format`: table or json (the API's JSON)")
	fs.StringVar(&c.output, "output", c.output, "same as -o")
}

var globalNames = map[string]bool{"url": true, "key": true, "o": true, "output": true}

// runCommand parses a command's flags and arguments and runs it.
func (c *cli) runCommand(ctx context.Context, cm *command, args []string) error {
	fs := flag.NewFlagSet("stepupctl "+cm.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.globalFlags(fs)
	runFn := cm.setup(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		commandHelp(c.stdout, cm, fs)
		return err
	}
	if err != nil {
		return usagef(cm.path, "%v", err)
	}
	if len(pos) != cm.nargs {
		switch {
		case cm.nargs == 0:
			return usagef(cm.path, "unexpected argument %q", pos[0])
		case len(pos) < cm.nargs:
			return usagef(cm.path, "missing argument: want %s", cm.args)
		default:
			return usagef(cm.path, "too many arguments (%q): want %s", pos[cm.nargs:], cm.args)
		}
	}
	for _, p := range pos {
		if strings.TrimSpace(p) == "" {
			return usagef(cm.path, "empty argument: want %s", cm.args)
		}
	}
	if err := c.connect(cm); err != nil {
		return err
	}
	return runFn(ctx, c, pos)
}

// connect settles the global flags and builds the client.
func (c *cli) connect(cm *command) error {
	if c.url == "" {
		c.url = c.env["STEPUP_URL"]
	}
	if c.url == "" {
		c.url = defaultURL
	}
	if c.key == "" {
		c.key = c.env["STEPUP_KEY"]
	}
	switch c.output {
	case "":
		c.output = "table"
	case "table", "json":
	default:
		return usagef(cm.path, "-o %q: want table or json", c.output)
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef(cm.path, "--url %q: want http(s)://host[:port]", c.url)
	}
	if c.key == "" {
		return usagef(cm.path, "no API key: pass --key or set STEPUP_KEY")
	}
	c.rec = &recorder{next: http.DefaultTransport}
	c.api = client.New(c.url, c.key,
		client.WithHTTPClient(&http.Client{Transport: c.rec, Timeout: 30 * time.Second}),
		client.WithTimeout(30*time.Second), // an operator's export may take longer than a login's call
		client.WithUserAgent("stepupctl/1"))
	return nil
}

// printError explains err on stderr, with a hint where one helps.
func (c *cli) printError(err error) {
	var ae *client.APIError
	var ue *url.Error
	switch {
	case errors.As(err, &ae):
		fmt.Fprintf(c.stderr, "stepupctl: %v\n", ae)
		switch ae.Status {
		case http.StatusUnauthorized:
			fmt.Fprintln(c.stderr, "hint: check --key or STEPUP_KEY; a revoked key stops working at once")
		case http.StatusForbidden:
			if ae.Code == "forbidden" {
				fmt.Fprintln(c.stderr, "hint: tenants and keys need the operator key; policy, users and events need a manager key of the tenant")
			}
		}
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(c.stderr, "stepupctl: interrupted")
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "stepupctl: cannot reach %s: %v\n", c.url, ue.Err)
	default:
		fmt.Fprintf(c.stderr, "stepupctl: %v\n", err)
	}
}

// overview is the top-level help.
func (c *cli) overview(w io.Writer) {
	fmt.Fprint(w, `stepupctl is the account manager's and operator's command line for stepup.

Usage: stepupctl [global flags] <command> [flags] [arguments]

`)
	var mgr, op []command
	for _, cm := range commands() {
		if strings.HasPrefix(cm.path, "tenants") || strings.HasPrefix(cm.path, "keys") {
			op = append(op, cm)
		} else {
			mgr = append(mgr, cm)
		}
	}
	fmt.Fprintln(w, "Account manager commands (a manager key of the tenant):")
	listCommands(w, mgr)
	fmt.Fprintln(w, "\nOperator commands (the operator key):")
	listCommands(w, op)
	fmt.Fprint(w, globalHelp+`
Run 'stepupctl <command> --help' for a command's flags.
Exit status: 0 success, 1 API or runtime error, 2 usage error.
`)
}

const globalHelp = `
Global flags (before or after the command):
  --url URL      server base URL (env STEPUP_URL; default ` + defaultURL + `)
  --key KEY      API key (env STEPUP_KEY, preferred: a flag shows in the process list)
  -o FORMAT      table (default) or json (the API's JSON)
`

// listCommands prints each command's synopsis with its summary below.
func listCommands(w io.Writer, cmds []command) {
	for _, cm := range cmds {
		fmt.Fprintf(w, "  %s\n        %s\n", synopsis(cm), cm.summary)
	}
}

// synopsis is "users reset <user-id> --reason TEXT".
func synopsis(cm command) string {
	s := cm.path
	for _, part := range []string{cm.args, cm.flags} {
		if part != "" {
			s += " " + part
		}
	}
	return s
}

// commandHelp prints a command's --help: usage, text and its own flags.
func commandHelp(w io.Writer, cm *command, fs *flag.FlagSet) {
	has := false
	fs.VisitAll(func(f *flag.Flag) { has = has || !globalNames[f.Name] })
	fmt.Fprintf(w, "Usage: stepupctl %s", synopsis(*cm))
	if has && cm.flags == "" {
		fmt.Fprint(w, " [flags]")
	}
	fmt.Fprintf(w, "\n\n%s\n", cm.summary)
	if cm.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cm.help))
	}
	if has {
		fmt.Fprint(w, "\nFlags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			if globalNames[f.Name] {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			dash := "--"
			if len(f.Name) == 1 {
				dash = "-"
			}
			line := "  " + dash + f.Name
			if name != "" {
				line += " " + name
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "%s\n    \t%s\n", line, usage)
		})
	}
	fmt.Fprint(w, globalHelp)
}
