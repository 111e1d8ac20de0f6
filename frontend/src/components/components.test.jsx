import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeEvent } from '../test/fakeSocket.js';
import AggregatePanel from './AggregatePanel.jsx';
import ConnectionStatus from './ConnectionStatus.jsx';
import EventLog from './EventLog.jsx';
import FilterBar from './FilterBar.jsx';
import Header from './Header.jsx';
import MetricChart from './MetricChart.jsx';

describe('ConnectionStatus', () => {
  it('shows exactly the state word and the retry countdown', () => {
    render(<ConnectionStatus status="reconnecting" retryAt={10_000} now={7_100} onRetryNow={() => {}} />);
    expect(screen.getByTestId('connection-status')).toHaveTextContent(/^reconnecting$/);
    expect(screen.getByTestId('retry-countdown')).toHaveTextContent('retry in 3 s');
  });

  it('has no countdown while connected', () => {
    render(<ConnectionStatus status="connected" retryAt={null} now={0} />);
    expect(screen.getByTestId('connection-status').textContent).toBe('connected');
    expect(screen.queryByTestId('retry-countdown')).toBeNull();
  });
});

describe('Header', () => {
  it('shows rate, latency and total as plain numbers, p99 against the 100 ms promise', () => {
    render(
      <Header
        connection={{ status: 'connected' }}
        now={0}
        rate={201.4}
        latency={{ p50: 3.21, p99: 142 }}
        total={12345}
        theme="light"
        onToggleTheme={() => {}}
      />,
    );
    expect(screen.getByTestId('event-rate').textContent).toBe('201');
    expect(screen.getByTestId('latency-p50').textContent).toBe('3.2');
    expect(screen.getByTestId('latency-p99').textContent).toBe('142.0');
    expect(screen.getByTestId('events-total').textContent).toBe('12345');
    expect(screen.getByTestId('latency-p99').closest('.hstat')).toHaveClass('hstat--bad');
    expect(screen.getByRole('button', { name: 'Dark theme' })).toHaveAttribute('aria-pressed', 'false');
  });
});

describe('EventLog', () => {
  it('renders one row per event and toggles pause', async () => {
    const onTogglePause = vi.fn();
    const events = [makeEvent({ source: 'web', tags: { status: 'completed' } }), makeEvent({ source: 'api' })];
    render(<EventLog events={events} paused={false} onTogglePause={onTogglePause} newSincePause={0} />);
    const rows = within(screen.getByTestId('event-log')).getAllByTestId('event-row');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveAttribute('data-event-id', events[0].id);
    expect(rows[0]).toHaveTextContent('status=completed');
    await userEvent.click(screen.getByTestId('pause-button'));
    expect(onTogglePause).toHaveBeenCalledOnce();
  });

  it('builds only the rows in view of a long log, and the ones scrolled to', async () => {
    const events = Array.from({ length: 200 }, () => makeEvent());
    render(<EventLog events={events} paused={false} onTogglePause={() => {}} newSincePause={0} />);
    const list = screen.getByTestId('event-log');
    const ids = () => within(list).getAllByTestId('event-row').map((r) => r.dataset.eventId);
    expect(ids().length).toBeGreaterThan(10);
    expect(ids().length).toBeLessThan(40);
    expect(ids()[0]).toBe(events[0].id);
    // Spacers keep the scroll height of all 200 rows (29 px each).
    const spacers = [...list.querySelectorAll('.log__spacer')].reduce((sum, li) => sum + parseFloat(li.style.height), 0);
    expect(spacers + ids().length * 29).toBe(200 * 29);

    list.scrollTop = 150 * 29;
    list.dispatchEvent(new Event('scroll'));
    await waitFor(() => expect(ids()).toContain(events[150].id));
    expect(ids()).not.toContain(events[0].id);
    expect(within(list).getAllByTestId('event-row')[0]).toHaveAttribute('aria-setsize', '200');
  });

  it('shows what to do when there is nothing yet', () => {
    render(<EventLog events={[]} paused={false} onTogglePause={() => {}} empty={<p>No events yet.</p>} />);
    expect(screen.getByText('No events yet.')).toBeInTheDocument();
    expect(screen.getByTestId('event-log').children).toHaveLength(0);
  });

  it('says it is loading, not that there is nothing, while the first events are fetched', () => {
    const { rerender } = render(<EventLog events={[]} paused={false} onTogglePause={() => {}} loading />);
    expect(screen.getByText('Loading events…')).toBeInTheDocument();
    expect(screen.queryByText('No events yet.')).toBeNull();
    rerender(<EventLog events={[]} paused={false} onTogglePause={() => {}} loading={false} />);
    expect(screen.getByText('No events yet.')).toBeInTheDocument();
  });
});

describe('AggregatePanel', () => {
  const data = {
    window: 300,
    total: { count: 42, rate: 0.14 },
    metrics: { orders: { count: 42, sum: 4200, avg: 100, min: 1, max: 300, rate: 0.14, p50: 90, p95: 250, p99: 290 } },
    sources: {},
  };

  it('shows count, sum, avg, min, max, p95 and p99 per metric for the window', () => {
    render(<AggregatePanel data={data} loading={false} error={null} windowSec={300} />);
    const panel = screen.getByTestId('aggregate-panel');
    expect(panel).toHaveAttribute('data-window', '300');
    const row = screen.getByTestId('aggregate-row-orders');
    for (const v of ['42', '4,200', '100', '1', '300', '250', '290']) expect(row).toHaveTextContent(v);
    expect(panel).toHaveTextContent('last 5 minutes');
  });

  it('explains an empty window and an error', () => {
    const { rerender } = render(<AggregatePanel data={{ ...data, metrics: {} }} loading={false} error={null} windowSec={60} />);
    expect(screen.getByText(/No events in the last minute/)).toBeInTheDocument();
    expect(screen.getByText('python backend/generator.py')).toBeInTheDocument();
    rerender(<AggregatePanel data={null} loading={false} error="Request failed" windowSec={60} />);
    expect(screen.getByRole('alert')).toHaveTextContent('Request failed');
  });
});

describe('FilterBar', () => {
  it('offers every known source and metric plus "all" and reports choices', async () => {
    const onFilterChange = vi.fn();
    const onWindowChange = vi.fn();
    render(
      <FilterBar
        sources={['api', 'web']}
        metrics={['orders']}
        filter={{ source: '', metric: '' }}
        onFilterChange={onFilterChange}
        windowSec={60}
        onWindowChange={onWindowChange}
      />,
    );
    await userEvent.selectOptions(screen.getByTestId('source-filter'), 'web');
    expect(onFilterChange).toHaveBeenCalledWith({ source: 'web', metric: '' });
    await userEvent.selectOptions(screen.getByTestId('window-select'), '3600');
    expect(onWindowChange).toHaveBeenCalledWith(3600);
    expect(screen.getByLabelText('Metric')).toHaveDisplayValue('All metrics');
  });
});

describe('MetricChart', () => {
  it('draws one dataset per source inside its test hook, with a text alternative', async () => {
    const now = 1_700_000_000_000;
    const series = [
      { source: 'web', points: [{ x: now - 2000, y: 3 }, { x: now - 1000, y: 5 }] },
      { source: 'api', points: [{ x: now - 1000, y: 1 }] },
    ];
    render(<MetricChart metric="page_views" series={series} until={now} />);
    const card = screen.getByTestId('chart-page_views');
    await waitFor(() => expect(card.querySelector('canvas')).not.toBeNull());
    expect(within(card).getByRole('img')).toHaveAccessibleName(/Page views.*web 5, api 1/);
    expect(within(card).getByText('Page views')).toBeInTheDocument();
  });

  describe('mounted together', () => {
    beforeEach(async () => {
      // The queue is shared by every chart of the page: a previous test's last turn (a real
      // timer, of a chart since unmounted) runs out first, so the queue starts idle.
      await new Promise((resolve) => setTimeout(resolve, 20));
      vi.useFakeTimers();
    });
    afterEach(() => vi.useRealTimers());

    it('builds its Chart.js chart in a task of its own, one chart per task', () => {
      const now = 1_700_000_000_000;
      const series = [{ source: 'web', points: [{ x: now - 1000, y: 5 }] }];
      render(
        <>
          {['orders', 'signups', 'page_views'].map((m) => (
            <MetricChart key={m} metric={m} series={series} until={now} />
          ))}
        </>,
      );
      const canvases = () => document.querySelectorAll('[data-testid^="chart-"] canvas').length;
      // The cards (title, legend, latest values) are there at once; the charts follow one by one.
      expect(screen.getAllByTestId(/^chart-/)).toHaveLength(3);
      expect(canvases()).toBe(0);
      const built = [];
      while (canvases() < 3 && built.length < 20) {
        act(() => vi.advanceTimersToNextTimer()); // one task (a timer or an animation frame)
        built.push(canvases());
      }
      // 0 while the frame passes and the turns are queued, then one more chart per task.
      expect(built.filter((n) => n > 0)).toEqual([1, 2, 3]);
    });
  });
});
