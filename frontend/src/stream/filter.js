/** The dashboard's one filter, { source, metric }: '' means "all" for each field. */
export function matches(filter, source, metric) {
  return (!filter.source || filter.source === source) && (!filter.metric || filter.metric === metric);
}

/** The payload of the Socket.IO `subscribe` event: empty lists mean everything. */
export function toSubscription(filter) {
  return {
    sources: filter.source ? [filter.source] : [],
    metrics: filter.metric ? [filter.metric] : [],
  };
}

/** The `source` / `metric` query parameters of the REST API. */
export function toQuery(filter) {
  const q = {};
  if (filter.source) q.source = filter.source;
  if (filter.metric) q.metric = filter.metric;
  return q;
}
