package inspect

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kennel-cache/kennel/engine"
)

// Exit statuses (see the package documentation).
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// A command is one subcommand.
type command struct {
	name    string
	args    string // positional arguments, space separated, all required
	summary string // one line, for the command list
	help    string // paragraphs, for -h

	// setup registers the command's flags in fs (--json is already there)
	// and returns the function that runs it with its positional arguments.
	setup func(e *env, fs *flag.FlagSet) func(args []string) error
}

// commands lists the subcommands in the order help shows them.
var commands = []*command{statsCmd, lsCmd, getCmd, dumpCmd, verifyCmd, compactCmd}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// env is what a command runs with.
type env struct {
	stdout, stderr io.Writer
	json           bool             // --json
	terminal       bool             // stderr is a terminal: progress may be drawn on it
	now            func() time.Time // progress timing; time.Now outside tests
}

// Main runs fsinspect with args (the command line without the program name)
// and returns its exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, terminal: isTerminal(stderr), now: time.Now}
	return e.run(args)
}

func (e *env) run(args []string) int {
	if len(args) == 0 {
		printUsage(e.stderr)
		return exitUsage
	}
	switch name := args[0]; {
	case name == "-h" || name == "-help" || name == "--help":
		printUsage(e.stdout)
		return exitOK
	case name == "help" && len(args) == 1:
		printUsage(e.stdout)
		return exitOK
	case name == "help":
		return e.run([]string{args[1], "-h"})
	case strings.HasPrefix(name, "-"):
		fmt.Fprintf(e.stderr, "fsinspect: flag %s given before the command: flags go after it\nRun 'fsinspect -h' for usage.\n", name)
		return exitUsage
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(e.stderr, "fsinspect: unknown command %q\nRun 'fsinspect -h' for the list of commands.\n", args[0])
		return exitUsage
	}
	return c.main(e, args[1:])
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: fsinspect <command> [arguments] [flags]\n\n")
	fmt.Fprintf(w, "fsinspect inspects, verifies and compacts a kennel cache directory, also\nwhile other processes use it. Only compact writes to the directory.\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'fsinspect <command> -h' for a command's flags.\nExit status: 0 success, 1 failure (not found, damage found), 2 bad usage\nor a directory that cannot be read (for compact, written) as a kennel\ndirectory.\n")
}

func (c *command) synopsis() string {
	return fmt.Sprintf("usage: fsinspect %s %s [flags]", c.name, c.args)
}

func (c *command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\n%s\n\nflags:\n", c.synopsis(), strings.TrimSpace(c.help))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, arg, usage)
	})
	tw.Flush()
}

// main parses the command's arguments and runs it.
func (c *command) main(e *env, args []string) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed below, help by printHelp
	fs.BoolVar(&e.json, "json", false, "print one JSON document for scripts instead of tables")
	run := c.setup(e, fs)
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(e.stdout, fs)
		return exitOK
	}
	if err == nil {
		err = c.checkArgs(pos)
	}
	if err == nil {
		err = run(pos)
	}
	return c.exit(e, err)
}

// checkArgs checks the number of positional arguments.
func (c *command) checkArgs(pos []string) error {
	names := strings.Fields(c.args)
	switch {
	case len(pos) < len(names):
		return usageError{fmt.Errorf("missing %s", names[len(pos)])}
	case len(pos) > len(names):
		return usageError{fmt.Errorf("unexpected argument %q", pos[len(names)])}
	}
	return nil
}

// exit reports err, if any, and returns the exit status it calls for.
func (c *command) exit(e *env, err error) int {
	var (
		usage usageError
		ex    *exitError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(e.stderr, "fsinspect %s: %v\n%s\nRun 'fsinspect %s -h' for help.\n", c.name, usage.err, c.synopsis(), c.name)
		return exitUsage
	case errors.As(err, &ex):
		if ex.err != nil {
			fmt.Fprintf(e.stderr, "fsinspect %s: %v\n", c.name, ex.err)
		}
		return ex.code
	default:
		fmt.Fprintf(e.stderr, "fsinspect %s: %v\n", c.name, err)
		return exitFailed
	}
}

// parseArgs parses flags placed anywhere among the positional arguments,
// which it returns in order ("ls DIR --limit 3" and "ls --limit 3 DIR" are
// the same). Everything after "--" is positional, so a key may start with a
// dash: "get DIR -- -key".
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				err = usageError{err}
			}
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError is a command line the command cannot run: exit status 2, with
// the command's synopsis.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// exitError carries an exit status other than exitFailed. A nil err means
// the command has already said what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// cannotRun wraps an error that kept the command from running at all (the
// directory is missing or is not a kennel directory): exit status 2.
func cannotRun(err error) error { return &exitError{code: exitUsage, err: err} }

// openCache opens dir read-only: no lock taken, nothing written, the index
// as the directory held it at this moment.
func openCache(dir string) (*engine.Cache, error) {
	c, err := engine.Open(dir, engine.Options{ReadOnly: true})
	if err != nil {
		return nil, cannotRun(err)
	}
	return c, nil
}
