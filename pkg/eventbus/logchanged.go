package eventbus

import (
	"bytes"
	"strings"

	"github.com/nats-io/nats.go"
)

// subjectLogChanged is the core NATS subject (no stream) of event-log change
// notices.
const subjectLogChanged = "hubhooks.logchanged."

// LogChangedSubject is the subject on which a logger announces that entries
// of hubID's event log were created or changed (see NewLogChangedMsg).
// Notices are plain NATS messages, not stored: whoever follows a hub's log
// live (TailEventLogs) subscribes while it follows and reads the entries
// named; a notice missed is an update not shown live, never data lost.
func LogChangedSubject(hubID string) string { return subjectLogChanged + hubID }

// NewLogChangedMsg is the change notice for entries ids of hubID, published
// after their write is confirmed. The body is the entry ids, one per line
// (ids are A-Za-z0-9-_ only).
func NewLogChangedMsg(hubID string, ids []string) *nats.Msg {
	return &nats.Msg{Subject: LogChangedSubject(hubID), Data: []byte(strings.Join(ids, "\n"))}
}

// DecodeLogChanged returns the entry ids of a change notice's body. Empty
// lines are skipped; the reader checks each id before using it.
func DecodeLogChanged(data []byte) []string {
	var ids []string
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(line) > 0 {
			ids = append(ids, string(line))
		}
	}
	return ids
}
