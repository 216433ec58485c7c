// Package routing decides which of a hub's callback URLs a webhook event
// goes to, and says why it does not go to the others. The expander routes
// with it, the deliverer re-checks pending deliveries with it and
// OperationsService.ExplainDomainEvent answers with it, so the three agree.
//
//	to, skipped := routing.Route(cfg, "BILLINGPLAN.CREATED", arrived)
//	for _, s := range skipped {
//		fmt.Println(s.URL.GetUrl(), s.Reason, s.Detail)
//	}
package routing
