package deliverer

import (
	"context"
	"fmt"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// Jobs that may be done already (a message delivered again, or marked for a
// recheck; a parked attempt coming back) are checked against the event log
// (AttemptLog) before they are attempted, and settled without a POST when
// the log holds their attempt.

// recorded asks the event log, in one round trip, which of jobs it holds
// the attempt of: jobs of one message, so of one hub (a fan-out's targets
// share its hub, see eventbus.DecodeJobs).
func (s *Service) recorded(ctx context.Context, jobs []*deliveryv1.DeliveryJob) ([]bool, error) {
	ids, attempts := make([]string, len(jobs)), make([]int32, len(jobs))
	for i, job := range jobs {
		ids[i], attempts[i] = job.GetDeliveryId(), max(job.GetAttempt(), 1)
	}
	done, err := s.eventLog.RecordedAll(ctx, jobs[0].GetHubId(), ids, attempts)
	if err == nil && len(done) != len(jobs) {
		err = fmt.Errorf("event log: %d answers for %d jobs", len(done), len(jobs))
	}
	return done, err
}

// attemptRecorded asks the event log whether it holds job's attempt.
func (s *Service) attemptRecorded(ctx context.Context, job *deliveryv1.DeliveryJob) (bool, error) {
	done, err := s.recorded(ctx, []*deliveryv1.DeliveryJob{job})
	if err != nil {
		return false, err
	}
	return done[0], nil
}

// notRecorded returns the jobs of one message whose attempt the event log
// does not hold yet (all of them when the log cannot be asked).
func (s *Service) notRecorded(jobs []*deliveryv1.DeliveryJob) []*deliveryv1.DeliveryJob {
	ctx, cancel := context.WithTimeout(s.workCtx, s.cfg.OpTimeout)
	defer cancel()
	done, err := s.recorded(ctx, jobs)
	if err != nil {
		s.metrics.handlingErrors.WithLabelValues("recorded").Inc()
		return jobs
	}
	out := jobs[:0:0]
	for i, job := range jobs {
		if done[i] {
			s.metrics.skippedRecorded.Inc()
			continue
		}
		out = append(out, job)
	}
	return out
}
