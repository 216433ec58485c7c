package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
)

// errNotConfirmed is a destructive command the person did not confirm.
var errNotConfirmed = errors.New("not confirmed; nothing was changed")

// confirm guards a call that cannot be undone. --yes confirms it (scripts);
// without it a person at a terminal confirms by typing the hub id, and
// anywhere else the command is refused, so that a script never destroys
// data by accident.
func (a *app) confirm(yes bool, hub, what string) error {
	if yes {
		return nil
	}
	if !a.interactive {
		return usagef("%s cannot be undone: pass --yes to confirm", what)
	}
	fmt.Fprintf(a.stderr, "%s cannot be undone. Type the hub id (%s) to confirm: ", what, hub)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if strings.TrimSpace(line) != hub {
		if err != nil && line == "" {
			return fmt.Errorf("%w (no answer: %v)", errNotConfirmed, err)
		}
		return errNotConfirmed
	}
	return nil
}
