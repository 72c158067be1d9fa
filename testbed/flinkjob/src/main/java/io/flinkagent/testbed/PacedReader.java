package io.flinkagent.testbed;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.core.io.InputStatus;

/** Reads one {@link PacedSource.Split} at its arrival rate; see PacedSource. */
final class PacedReader implements SourceReader<Long, PacedSource.Split> {
    private static final long CHECK_MS = 100; // how often the control files are read
    private static final long LATE_MS = 60_000; // how old a late record is
    private static final double BURST_MS = 100; // reading may run this far ahead of its pace

    private final SourceReaderContext ctx;
    private final double recordsPerSecond;
    private final Path stallFile;
    private final Path lateFile;

    // Written by the task thread, read by the pendingRecords gauge.
    private volatile PacedSource.Split split;
    private volatile long next;

    private double perMs; // arrivals per millisecond on this split
    private double readClock; // ms: when the next read may happen while catching up
    private long checkedAt; // ms; 0: never
    private boolean stalled;
    private long lateEvery;
    private CompletableFuture<Void> available = new CompletableFuture<>();

    PacedReader(SourceReaderContext ctx, double recordsPerSecond, String controlDir) {
        this.ctx = ctx;
        this.recordsPerSecond = recordsPerSecond;
        Path dir = controlDir.isEmpty() ? null : Paths.get(controlDir);
        this.stallFile = dir == null ? null : dir.resolve("stall");
        this.lateFile = dir == null ? null : dir.resolve("late");
        // FLIP-33: what an autoscaler or an alert reads as the source's backlog.
        ctx.metricGroup().setPendingRecordsGauge(this::pending);
    }

    @Override
    public void start() {
        if (split == null) {
            ctx.sendSplitRequest();
        }
    }

    @Override
    public InputStatus pollNext(ReaderOutput<Long> output) throws IOException {
        PacedSource.Split s = split;
        if (s == null) {
            return InputStatus.NOTHING_AVAILABLE; // addSplits completes `available`
        }
        long now = System.currentTimeMillis();
        if (now - checkedAt >= CHECK_MS) {
            readControlFiles(now);
        }
        if (stalled) {
            return waitUntil(now + CHECK_MS);
        }
        long n = next;
        if (n >= arrived(s, now)) {
            return waitUntil(arrival(s, n));
        }
        if (readClock > now) {
            return waitUntil((long) Math.ceil(readClock));
        }
        long ts = arrival(s, n);
        if (lateEvery > 0 && (n + 1) % lateEvery == 0) {
            ts -= LATE_MS;
        }
        output.collect(n * s.count + s.index, ts);
        next = n + 1;
        readClock = Math.max(readClock, now - BURST_MS) + 1 / (PacedSource.CATCH_UP * perMs);
        return InputStatus.MORE_AVAILABLE;
    }

    /** Records of the split that arrived by now. */
    private long arrived(PacedSource.Split s, long now) {
        return now <= s.startMillis ? 0 : (long) ((now - s.startMillis) * perMs);
    }

    /** When record n arrives: its event time. */
    private long arrival(PacedSource.Split s, long n) {
        return s.startMillis + (long) Math.ceil((n + 1) / perMs);
    }

    private long pending() {
        PacedSource.Split s = split;
        return s == null ? 0 : Math.max(0, arrived(s, System.currentTimeMillis()) - next);
    }

    private InputStatus waitUntil(long t) {
        long delay = Math.max(1, t - System.currentTimeMillis());
        CompletableFuture<Void> f = new CompletableFuture<>();
        available = f;
        // Run on the delay scheduler's thread: completing the future only
        // posts a mail to the task.
        CompletableFuture.delayedExecutor(delay, TimeUnit.MILLISECONDS, Runnable::run).execute(() -> f.complete(null));
        return InputStatus.NOTHING_AVAILABLE;
    }

    private void readControlFiles(long now) {
        checkedAt = now;
        if (stallFile == null) {
            return;
        }
        stalled = Files.exists(stallFile);
        long every = 0;
        try {
            if (Files.exists(lateFile)) {
                every = Long.parseLong(new String(Files.readAllBytes(lateFile), StandardCharsets.UTF_8).trim());
            }
        } catch (IOException | NumberFormatException e) {
            every = 0; // a half-written or removed file: read again in CHECK_MS
        }
        lateEvery = every;
    }

    @Override
    public List<PacedSource.Split> snapshotState(long checkpointId) {
        PacedSource.Split s = split;
        return s == null ? Collections.emptyList() : Collections.singletonList(s.at(next));
    }

    @Override
    public CompletableFuture<Void> isAvailable() {
        return available;
    }

    @Override
    public void addSplits(List<PacedSource.Split> splits) {
        if (splits.isEmpty()) {
            return;
        }
        if (split != null || splits.size() > 1) {
            throw new IllegalStateException("a PacedSource reader reads one split, got " + splits + " holding " + split);
        }
        PacedSource.Split s = splits.get(0);
        perMs = recordsPerSecond / s.count / 1000.0;
        next = s.next;
        split = s;
        available.complete(null);
    }

    @Override
    public void notifyNoMoreSplits() {}

    @Override
    public void close() {}
}
