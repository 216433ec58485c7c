package logger

import (
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// announce publishes one change notice per hub naming the entries recs
// wrote, after Redis confirmed the write, for TailEventLogs readers on any
// replica. Notices are core NATS (fire and forget, no stream): a notice
// that cannot be published is counted and costs a live update, not data.
func (s *Service) announce(recs []*deliveryv1.AttemptRecorded) {
	nc := s.js.Conn()
	if nc == nil {
		return
	}
	byHub := map[string][]string{}
	var order []string
	seen := map[[2]string]bool{}
	for _, rec := range recs {
		hub, id := rec.GetJob().GetHubId(), rec.GetJob().GetDeliveryId()
		if seen[[2]string{hub, id}] {
			continue
		}
		seen[[2]string{hub, id}] = true
		if _, ok := byHub[hub]; !ok {
			order = append(order, hub)
		}
		byHub[hub] = append(byHub[hub], id)
	}
	for _, hub := range order {
		if err := nc.PublishMsg(eventbus.NewLogChangedMsg(hub, byHub[hub])); err != nil {
			s.m.noticeErrors.Inc()
		}
	}
}
