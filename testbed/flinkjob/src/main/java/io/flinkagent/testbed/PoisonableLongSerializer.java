package io.flinkagent.testbed;

import java.io.IOException;

import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;

/**
 * A Long serializer that refuses to write {@link #POISON}. Operator state is
 * copied in a checkpoint's synchronous phase and serialized in its
 * asynchronous phase, so a poisoned element fails the checkpoint the way a
 * failing state upload does: the task declines it ("Asynchronous task
 * checkpoint failed.") and keeps running.
 */
public final class PoisonableLongSerializer extends TypeSerializer<Long> {
    private static final long serialVersionUID = 1L;

    /** The value whose serialization fails. */
    public static final long POISON = Long.MIN_VALUE;

    @Override
    public boolean isImmutableType() {
        return true;
    }

    @Override
    public TypeSerializer<Long> duplicate() {
        return this;
    }

    @Override
    public Long createInstance() {
        return 0L;
    }

    @Override
    public Long copy(Long from) {
        return from;
    }

    @Override
    public Long copy(Long from, Long reuse) {
        return from;
    }

    @Override
    public int getLength() {
        return Long.BYTES;
    }

    @Override
    public void serialize(Long v, DataOutputView out) throws IOException {
        if (v == POISON) {
            throw new IOException("testbed fault switch: refusing to write poisoned operator state");
        }
        out.writeLong(v);
    }

    @Override
    public Long deserialize(DataInputView in) throws IOException {
        return in.readLong();
    }

    @Override
    public Long deserialize(Long reuse, DataInputView in) throws IOException {
        return in.readLong();
    }

    @Override
    public void copy(DataInputView in, DataOutputView out) throws IOException {
        out.writeLong(in.readLong());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PoisonableLongSerializer;
    }

    @Override
    public int hashCode() {
        return PoisonableLongSerializer.class.hashCode();
    }

    @Override
    public TypeSerializerSnapshot<Long> snapshotConfiguration() {
        return new Snapshot();
    }

    /** Restores the serializer from checkpoints. */
    public static final class Snapshot extends SimpleTypeSerializerSnapshot<Long> {
        public Snapshot() {
            super(PoisonableLongSerializer::new);
        }
    }
}
