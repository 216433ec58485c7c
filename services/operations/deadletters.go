package operations

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Bounds of ListDeadLetters.
const (
	defaultDeadLetterPage = 50
	maxDeadLetterPage     = 500
	// maxDeadLetterBody is how much of a dead letter's body is answered.
	maxDeadLetterBody = 64 << 10
	// maxDeadLetterScan bounds the dead letters one call reads while the
	// hub filter skips them; the page then ends early, with a token.
	maxDeadLetterScan = 5000
)

// listDeadLetters is ListDeadLetters: it reads HUBHOOKS_DLQ message by
// message (a get by sequence, the next on the kind's subject), leaving no
// consumer behind.
func (s *Service) listDeadLetters(ctx context.Context, req *hubhooksv1.ListDeadLettersRequest) (*hubhooksv1.ListDeadLettersResponse, error) {
	subject, ok := eventbus.DeadLetterSubject(req.GetKind())
	if !ok {
		return nil, invalidf("kind %q: want events, jobs or nothing (both)", req.GetKind())
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, invalidf("page_size %d: must not be negative", size)
	case size == 0:
		size = defaultDeadLetterPage
	case size > maxDeadLetterPage:
		size = maxDeadLetterPage
	}
	start := max(req.GetSinceSequence(), 1)
	if t := req.GetPageToken(); t != "" {
		seq, err := strconv.ParseUint(t, 10, 64)
		if err != nil || seq == 0 {
			return nil, invalidf("page_token %q: not a token this call answered", t)
		}
		start = max(start, seq)
	}
	resp := &hubhooksv1.ListDeadLettersResponse{}
	st, err := s.js.Stream(ctx, eventbus.StreamDeadLetters)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return resp, nil // nothing was ever dead-lettered
	}
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	last := st.CachedInfo().State.LastSeq
	if req.GetSince() != nil {
		from, err := firstSince(ctx, st, start, last, req.GetSince().AsTime())
		if err != nil {
			return nil, err
		}
		start = from
	}
	seq := start
	for scanned := 0; seq <= last && len(resp.DeadLetters) < size && scanned < maxDeadLetterScan; scanned++ {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			seq = last + 1
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		seq = m.Sequence + 1
		dl := deadLetterOf(m)
		if req.GetHubId() != "" && dl.GetHubId() != req.GetHubId() {
			continue
		}
		resp.DeadLetters = append(resp.DeadLetters, dl)
	}
	if seq <= last {
		resp.NextPageToken = strconv.FormatUint(seq, 10)
	}
	return resp, nil
}

// firstSince is the first sequence from lo on whose next message was
// stored at or after since (last+1 when none): a binary search, the
// stream's times growing with its sequences.
func firstSince(ctx context.Context, st jetstream.Stream, lo, last uint64, since time.Time) (uint64, error) {
	hi := last + 1
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, err := st.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(">"))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			hi = mid
		case err != nil:
			return 0, fmt.Errorf("read dead letter %d: %w", mid, err)
		case m.Time.Before(since):
			lo = m.Sequence + 1
		default:
			hi = mid
		}
	}
	return lo, nil
}

// deadLetterOf is the answer for m, a message of HUBHOOKS_DLQ: what
// eventbus.DeadLetterOf and the expander put in its headers.
func deadLetterOf(m *jetstream.RawStreamMsg) *hubhooksv1.DeadLetter {
	h := m.Header
	dl := &hubhooksv1.DeadLetter{
		Sequence:       m.Sequence,
		Time:           timestamppb.New(m.Time),
		Kind:           eventbus.DeadLetterKind(m.Subject),
		Subject:        h.Get(eventbus.HeaderOriginalSubject),
		OriginalStream: h.Get(eventbus.HeaderOriginalStream),
		EventId:        h.Get(eventbus.HeaderEventID),
		HubId:          h.Get(eventbus.HeaderHubID),
		Reason:         h.Get(eventbus.HeaderReason),
		ContentType:    h.Get(eventbus.HeaderContentType),
		BodySize:       int64(len(m.Data)),
		Body:           m.Data,
	}
	dl.OriginalSequence, _ = strconv.ParseUint(h.Get(eventbus.HeaderOriginalSeq), 10, 64)
	if n, err := strconv.ParseInt(h.Get(eventbus.HeaderBodySize), 10, 64); err == nil && n > dl.BodySize {
		dl.BodySize, dl.BodyTruncated = n, true // cut to fit the server (eventbus.FitDeadLetter)
	}
	if dl.HubId == "" {
		dl.HubId, _, _ = eventbus.HubOfDeliverySubject(dl.Subject) // a job's subject names its hub
	}
	if len(dl.Body) > maxDeadLetterBody {
		dl.Body, dl.BodyTruncated = dl.Body[:maxDeadLetterBody], true
	}
	return dl
}
