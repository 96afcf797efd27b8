/*
 * protocol.c - the firmware side of the host protocol (the format is in protocol.h).
 *
 * Bytes are decoded as they arrive into one fixed buffer, so no input, however long or
 * malformed, can grow memory use or block the loop: an over-long frame is discarded up to
 * its delimiter and answered with FRAME_TOO_LONG. Responses are built in a second buffer
 * and COBS-encoded straight onto the UART.
 */
#include "protocol.h"

#include <stdbool.h>
#include <string.h>

#include "board.h"
#include "dk.h"
#include "model_api.h"
#include "monitor.h"

#define AIRCR 0xE000ED0Cu
#define AIRCR_SYSRESETREQ 0x05FA0004u /* VECTKEY plus the reset request bit */
#define COBS_MAX_RUN 254u             /* data bytes per COBS block without a zero */

/* ---- CRC-32 ----------------------------------------------------------------------- */

static uint32_t crc_table[256];

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        }
        crc_table[i] = c;
    }
}

uint32_t proto_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc = crc_table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    }
    return ~crc;
}

/* ---- little-endian helpers -------------------------------------------------------- */

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

/* ---- state ------------------------------------------------------------------------ */

static struct {
    /* COBS decoder */
    uint8_t frame[PROTO_FRAME_MAX];
    uint32_t length;      /* decoded bytes so far, counted past the end when too long */
    uint32_t block_left;  /* data bytes left in the current COBS block */
    bool zero_pending;    /* the current block ends in an encoded zero */
    bool started;         /* any byte since the last delimiter */

    /* response under construction; header at 0, payload from PROTO_HEADER_BYTES */
    uint8_t out[PROTO_FRAME_MAX];

    /* the stored response to the last request answered successfully; RAW also unpacks
     * its int16 samples here, beyond its answer (hence the int16 view and the alignment:
     * it runs the model on the int8 input it builds here too) */
    union {
        uint8_t stored[PROTO_RESPONSE_BYTES];
        int16_t stored_i16[PROTO_RESPONSE_BYTES / 2];
    } __attribute__((aligned(8)));
    uint32_t stored_length;
    uint8_t stored_cmd;
    bool stored_valid;
    uint16_t stored_seq;
    uint32_t stored_crc;

    int model_status;
    uint16_t max_batch;
    uint32_t stats[PROTO_STAT_COUNT];
} s;

static void decoder_reset(void)
{
    s.length = 0;
    s.block_left = 0;
    s.zero_pending = false;
    s.started = false;
}

static uint16_t largest_batch(void)
{
    const model_tensor_info *in = model_input();
    const model_tensor_info *out = model_output();
    uint32_t header = 2u + 1u + 4u * in->ndim;
    if (in->size == 0 || header >= PROTO_MAX_PAYLOAD) {
        return 0;
    }
    uint32_t by_request = (PROTO_MAX_PAYLOAD - header) / in->size;
    uint32_t by_result = (PROTO_RESPONSE_BYTES - 2u) / (out->size + 8u);
    uint32_t n = by_request < by_result ? by_request : by_result;
    return (uint16_t)(n > 0xFFFFu ? 0xFFFFu : n);
}

void proto_init(int model_status)
{
    memset(&s, 0, sizeof s);
    crc_table_init();
    s.model_status = model_status;
    s.max_batch = largest_batch();
}

/* ---- sending ---------------------------------------------------------------------- */

/* COBS: each block is a code byte n (1..255) and n-1 data bytes; a code below 255 stands
 * for a zero after its data, except at the very end of the frame. */
static void cobs_write(const uint8_t *data, uint32_t n)
{
    uint32_t i = 0;
    for (;;) {
        uint32_t run = 0;
        while (i + run < n && data[i + run] != 0 && run < COBS_MAX_RUN) {
            run++;
        }
        board_putc((uint8_t)(run + 1));
        board_write(data + i, run);
        i += run;
        if (i == n) {
            break;
        }
        if (run < COBS_MAX_RUN) {
            i++; /* the zero this block's code stands for */
        }
    }
}

/* Send s.out as a frame: payload of `len` bytes already at s.out + PROTO_HEADER_BYTES. */
static void send_out(uint16_t seq, uint8_t cmd, uint32_t len)
{
    put_u16(s.out, (uint16_t)len);
    put_u16(s.out + 2, seq);
    s.out[4] = cmd;
    uint32_t n = PROTO_HEADER_BYTES + len;
    put_u32(s.out + n, proto_crc32(0, s.out, n));
    board_putc(0);
    cobs_write(s.out, n + PROTO_CRC_BYTES);
    board_putc(0);
    board_flush();
}

static uint8_t *out_payload(void)
{
    return s.out + PROTO_HEADER_BYTES;
}

static void send_error(uint16_t seq, uint8_t cmd, uint8_t code, uint32_t detail)
{
    uint8_t *p = out_payload();
    p[0] = code;
    p[1] = cmd;
    put_u32(p + 2, detail);
    s.stats[PROTO_STAT_ERRORS_SENT]++;
    send_out(seq, PROTO_ERROR, 6);
}

/* Send the stored response: RESULT in parts, anything else as one frame. */
static void send_stored(uint16_t seq)
{
    if (s.stored_cmd != PROTO_RESULT) {
        memcpy(out_payload(), s.stored, s.stored_length);
        send_out(seq, s.stored_cmd, s.stored_length);
        return;
    }
    const uint32_t chunk = PROTO_MAX_PAYLOAD - PROTO_RESULT_PART_HEADER;
    uint32_t parts = (s.stored_length + chunk - 1) / chunk;
    for (uint32_t part = 0; part < parts; part++) {
        uint32_t offset = part * chunk;
        uint32_t n = s.stored_length - offset < chunk ? s.stored_length - offset : chunk;
        uint8_t *p = out_payload();
        put_u16(p, (uint16_t)part);
        put_u16(p + 2, (uint16_t)parts);
        memcpy(p + PROTO_RESULT_PART_HEADER, s.stored + offset, n);
        send_out(seq, PROTO_RESULT, PROTO_RESULT_PART_HEADER + n);
    }
}

/* Keep `len` bytes at s.stored as the answer to (seq, crc), then send them. */
static void store_and_send(uint16_t seq, uint32_t crc, uint8_t cmd, uint32_t len)
{
    s.stored_cmd = cmd;
    s.stored_length = len;
    s.stored_seq = seq;
    s.stored_crc = crc;
    s.stored_valid = true;
    send_stored(seq);
}

/* ---- request handlers --------------------------------------------------------------
 * Each returns 0 when it has answered, or an error code (with *detail set) for the
 * caller to send. */

static uint8_t *put_tensor(uint8_t *p, const model_tensor_info *t)
{
    *p++ = t->ndim;
    for (unsigned d = 0; d < t->ndim && d < MODEL_MAX_DIMS; d++) {
        put_u32(p, t->dims[d]);
        p += 4;
    }
    put_u32(p, t->size);
    memcpy(p + 4, &t->scale, 4);
    put_u32(p + 8, (uint32_t)t->zero_point);
    return p + 12;
}

static uint8_t *put_str(uint8_t *p, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n > 255) {
        n = 255;
    }
    *p++ = (uint8_t)n;
    memcpy(p, text, n);
    return p + n;
}

static int model_error(int status, uint32_t *detail)
{
    *detail = (uint32_t)status;
    return status == MODEL_BUSY ? PROTO_ERR_BUSY : PROTO_ERR_INTERNAL;
}

static int handle_hello(uint16_t seq, uint32_t crc, uint32_t len, uint32_t *detail)
{
    if (len != 0) {
        *detail = 0;
        return PROTO_ERR_BAD_LENGTH;
    }
    uint8_t *p = s.stored;
    *p++ = PROTO_VERSION;
    put_u16(p, (uint16_t)PROTO_MAX_PAYLOAD);
    put_u16(p + 2, s.max_batch);
    put_u16(p + 4, (uint16_t)model_layer_count());
    put_u32(p + 6, model_arena_bytes());
    p[10] = strcmp(board_counter_unit(), "cycles") == 0 ? 1 : 0;
    p += 11;
    memcpy(p, model_hash(), MODEL_HASH_BYTES);
    p += MODEL_HASH_BYTES;
    p = put_tensor(p, model_input());
    p = put_tensor(p, model_output());
    p = put_str(p, board_name());
    p = put_str(p, PROTO_FIRMWARE_VERSION);
    p = put_str(p, model_name());
    put_u32(p, (uint32_t)s.model_status);
    p += 4;
    store_and_send(seq, crc, PROTO_INFO, (uint32_t)(p - s.stored));
    return 0;
}

/* Check (ndim u8, dims u32 x ndim) at p against the model's input; returns bytes read or
 * 0 with *error set. */
static uint32_t check_shape(const uint8_t *p, uint32_t avail, int *error, uint32_t *detail)
{
    const model_tensor_info *in = model_input();
    *detail = in->size;
    if (avail < 1 || avail < 1u + 4u * p[0]) {
        *error = PROTO_ERR_BAD_LENGTH;
        return 0;
    }
    if (p[0] != in->ndim) {
        *error = PROTO_ERR_BAD_SHAPE;
        return 0;
    }
    for (unsigned d = 0; d < in->ndim; d++) {
        if (get_u32(p + 1 + 4 * d) != in->dims[d]) {
            *error = PROTO_ERR_BAD_SHAPE;
            return 0;
        }
    }
    return 1u + 4u * in->ndim;
}

static int handle_infer(uint16_t seq, uint32_t crc, const uint8_t *p, uint32_t len,
                        uint32_t *detail)
{
    if (s.model_status != MODEL_OK) {
        return model_error(s.model_status, detail);
    }
    if (len < 2) {
        *detail = 2;
        return PROTO_ERR_BAD_LENGTH;
    }
    uint32_t batch = get_u16(p);
    if (batch == 0 || batch > s.max_batch) {
        *detail = s.max_batch;
        return PROTO_ERR_BATCH_TOO_LARGE;
    }
    int error = 0;
    uint32_t shape_bytes = check_shape(p + 2, len - 2, &error, detail);
    if (!shape_bytes) {
        return error;
    }
    const uint32_t in_size = model_input()->size, out_size = model_output()->size;
    uint32_t expected = 2 + shape_bytes + batch * in_size;
    if (len != expected) {
        *detail = expected;
        return PROTO_ERR_BAD_LENGTH;
    }
    const int8_t *inputs = (const int8_t *)(p + 2 + shape_bytes);
    /* The stored response is about to be overwritten: a failure part-way must not leave
     * a half-written RESULT that a retransmission would be answered with. */
    s.stored_valid = false;
    put_u16(s.stored, (uint16_t)batch);
    uint8_t *work = s.stored + 2;
    int8_t *outputs = (int8_t *)(work + 8 * batch);
    for (uint32_t i = 0; i < batch; i++) {
        s.stats[PROTO_STAT_INVOCATIONS]++;
        board_cycle_mark(BOARD_MARK_BEGIN); /* for the benchmark's cycle estimate */
        board_counter_start();
        int status = model_invoke(inputs + i * in_size, outputs + i * out_size);
        uint64_t count = board_counter_read();
        board_cycle_mark(BOARD_MARK_INFER);
        if (status != MODEL_OK) {
            return model_error(status, detail);
        }
        put_u64(work + 8 * i, count);
    }
    store_and_send(seq, crc, PROTO_RESULT, 2 + batch * (8 + out_size));
    return 0;
}

/* RAW: the stored response is (work_pre u64, work u64, input, output); the samples are
 * unpacked beyond it, 8-byte aligned, so no extra RAM is needed. */
static int handle_raw(uint16_t seq, uint32_t crc, const uint8_t *p, uint32_t len,
                      uint32_t *detail)
{
    if (s.model_status != MODEL_OK) {
        return model_error(s.model_status, detail);
    }
    if (len < PROTO_RAW_HEADER) {
        *detail = PROTO_RAW_HEADER;
        return PROTO_ERR_BAD_LENGTH;
    }
    const model_tensor_info *in = model_input();
    const uint32_t in_size = in->size, out_size = model_output()->size;
    const uint32_t samples = get_u32(p);
    if (samples != in_size) {
        *detail = in_size;
        return PROTO_ERR_BAD_SHAPE;
    }
    if (len != PROTO_RAW_HEADER + 2u * samples) {
        *detail = PROTO_RAW_HEADER + 2u * in_size;
        return PROTO_ERR_BAD_LENGTH;
    }
    const uint32_t answer = PROTO_RAW_RESULT_HEADER + in_size + out_size;
    const uint32_t unpacked = (answer + 7u) & ~7u;
    if (answer > PROTO_MAX_PAYLOAD || unpacked + 2u * in_size > PROTO_RESPONSE_BYTES) {
        *detail = answer;
        return PROTO_ERR_INTERNAL;
    }
    s.stored_valid = false;
    int16_t *x = s.stored_i16 + unpacked / 2;
    for (uint32_t i = 0; i < samples; i++) {
        x[i] = (int16_t)get_u16(p + PROTO_RAW_HEADER + 2u * i);
    }
    int8_t *input = (int8_t *)(s.stored + PROTO_RAW_RESULT_HEADER);
    int8_t *output = input + in_size;
    s.stats[PROTO_STAT_INVOCATIONS]++;
    board_counter_start();
    int32_t pre = dk_preprocess_s16(x, samples, in->scale, in->zero_point, input, NULL);
    uint64_t pre_count = board_counter_read();
    if (pre != DK_PRE_OK) {
        *detail = (uint32_t)pre;
        return PROTO_ERR_PREPROCESS;
    }
    board_counter_start();
    int status = model_invoke(input, output);
    uint64_t count = board_counter_read();
    if (status != MODEL_OK) {
        return model_error(status, detail);
    }
    put_u64(s.stored, pre_count);
    put_u64(s.stored + 8, count);
    store_and_send(seq, crc, PROTO_RAW_RESULT, answer);
    return 0;
}

/* ---- streaming monitor (monitor.h) ------------------------------------------------- */

static uint32_t verdict_bytes(void)
{
    return PROTO_VERDICT_BYTES + model_output()->size;
}

/* Most verdicts one VERDICTS answer holds. */
static uint32_t max_verdicts(void)
{
    return (PROTO_MAX_PAYLOAD - PROTO_VERDICTS_HEADER) / verdict_bytes();
}

static int handle_monitor(uint16_t seq, uint32_t crc, const uint8_t *p, uint32_t len,
                          uint32_t *detail)
{
    if (s.model_status != MODEL_OK) {
        return model_error(s.model_status, detail);
    }
    if (len != 7) {
        *detail = 7;
        return PROTO_ERR_BAD_LENGTH;
    }
    uint32_t hop = get_u32(p);
    uint8_t mode = p[4];
    uint32_t smooth = get_u16(p + 5);
    int r = monitor_start(hop, mode, smooth);
    if (r == MONITOR_BAD_HOP) {
        *detail = model_input()->size;
        return PROTO_ERR_BAD_HOP;
    }
    if (r == MONITOR_BAD_SMOOTHING) {
        *detail = MONITOR_MAX_SMOOTH;
        return PROTO_ERR_BAD_SMOOTHING;
    }
    if (r != MONITOR_OK) {
        *detail = MONITOR_MAX_WINDOW;
        return PROTO_ERR_BAD_SHAPE;
    }
    uint8_t *q = s.stored;
    put_u32(q, model_input()->size);
    put_u32(q + 4, hop);
    q[8] = mode;
    put_u16(q + 9, (uint16_t)smooth);
    put_u16(q + 11, (uint16_t)max_verdicts());
    put_u32(q + 13, monitor_ring_bytes());
    put_u32(q + 17, monitor_scratch_bytes());
    store_and_send(seq, crc, PROTO_MONITOR_ACK, 21);
    return 0;
}

struct stream_ctx {
    uint32_t count;
    int32_t status;
};

static void stream_emit(const monitor_verdict *v, void *opaque)
{
    struct stream_ctx *ctx = opaque;
    if (v->status != 0) {
        ctx->status = v->status;
        return;
    }
    const uint32_t out_size = model_output()->size;
    uint8_t *q = s.stored + PROTO_VERDICTS_HEADER + ctx->count * verdict_bytes();
    put_u32(q, v->start);
    q[4] = v->cls;
    q[5] = v->smoothed;
    put_u32(q + 6, v->work_pre);
    put_u32(q + 10, v->work);
    put_u32(q + 14, proto_crc32(0, (const uint8_t *)v->input, model_input()->size));
    memcpy(q + PROTO_VERDICT_BYTES, v->output, out_size);
    ctx->count++;
}

static int handle_stream(uint16_t seq, uint32_t crc, const uint8_t *p, uint32_t len,
                         uint32_t *detail)
{
    if (s.model_status != MODEL_OK) {
        return model_error(s.model_status, detail);
    }
    const monitor_status *m = monitor_state();
    if (!m->active) {
        *detail = 0;
        return PROTO_ERR_NOT_STREAMING;
    }
    if (len < 1 || (len - 1u) % 2u != 0) {
        *detail = len;
        return PROTO_ERR_BAD_LENGTH;
    }
    const uint8_t flags = p[0];
    const uint32_t n = (len - 1u) / 2u;
    if (monitor_verdicts_for(n) > max_verdicts()) {
        *detail = max_verdicts();
        return PROTO_ERR_BATCH_TOO_LARGE;
    }
    s.stored_valid = false;
    struct stream_ctx ctx = {0, 0};
    monitor_push(p + 1, n, stream_emit, &ctx);
    s.stats[PROTO_STAT_INVOCATIONS] += ctx.count;
    if (ctx.status != 0) {
        monitor_stop();
        *detail = (uint32_t)ctx.status;
        return ctx.status < 0 ? PROTO_ERR_PREPROCESS : PROTO_ERR_INTERNAL;
    }
    uint8_t ended = 0;
    if (flags & PROTO_STREAM_END) {
        uint32_t verdicts = m->verdicts, received = m->received;
        monitor_stop();
        if (verdicts == 0) {
            /* the stream ended before one whole window arrived */
            *detail = received;
            return PROTO_ERR_STREAM_SHORT;
        }
        ended = 1;
    }
    put_u32(s.stored, m->received);
    put_u32(s.stored + 4, m->until_next);
    put_u16(s.stored + 8, (uint16_t)ctx.count);
    s.stored[10] = ended;
    store_and_send(seq, crc, PROTO_VERDICTS,
                   PROTO_VERDICTS_HEADER + ctx.count * verdict_bytes());
    return 0;
}

struct debug_ctx {
    uint16_t seq;
    uint16_t emitted;
};

static void debug_emit(int layer, const int8_t *data, uint32_t n, void *opaque)
{
    struct debug_ctx *ctx = opaque;
    const uint32_t chunk = PROTO_MAX_PAYLOAD - PROTO_DEBUG_DATA_HEADER;
    uint32_t offset = 0;
    ctx->emitted++;
    do { /* an empty tensor still gets one frame, so the host sees every layer */
        uint32_t k = n - offset < chunk ? n - offset : chunk;
        uint8_t *p = out_payload();
        put_u16(p, (uint16_t)layer);
        put_u32(p + 2, offset);
        memcpy(p + PROTO_DEBUG_DATA_HEADER, (const uint8_t *)data + offset, k);
        send_out(ctx->seq, PROTO_DEBUG_DATA, PROTO_DEBUG_DATA_HEADER + k);
        offset += k;
    } while (offset < n);
}

static int handle_debug(uint16_t seq, const uint8_t *p, uint32_t len, uint32_t *detail)
{
    if (s.model_status != MODEL_OK) {
        return model_error(s.model_status, detail);
    }
    int error = 0;
    uint32_t shape_bytes = check_shape(p, len, &error, detail);
    if (!shape_bytes) {
        return error;
    }
    uint32_t out_size = model_output()->size;
    if (len != shape_bytes + model_input()->size) {
        *detail = shape_bytes + model_input()->size;
        return PROTO_ERR_BAD_LENGTH;
    }
    if (out_size + 2 > PROTO_MAX_PAYLOAD || out_size > PROTO_RESPONSE_BYTES) {
        *detail = out_size;
        return PROTO_ERR_INTERNAL;
    }
    /* The output goes to the stored-response buffer, which therefore stops being valid;
     * a retransmitted DEBUG runs again, with the same result. */
    s.stored_valid = false;
    struct debug_ctx ctx = {seq, 0};
    s.stats[PROTO_STAT_INVOCATIONS]++;
    int status = model_invoke_debug((const int8_t *)(p + shape_bytes), (int8_t *)s.stored,
                                    debug_emit, &ctx);
    if (status != MODEL_OK) {
        return model_error(status, detail);
    }
    uint8_t *q = out_payload();
    put_u16(q, ctx.emitted);
    memcpy(q + 2, s.stored, out_size);
    send_out(seq, PROTO_DEBUG_END, 2 + out_size);
    return 0;
}

static int handle_layer(uint16_t seq, uint32_t crc, const uint8_t *p, uint32_t len,
                        uint32_t *detail)
{
    if (len != 2) {
        *detail = 2;
        return PROTO_ERR_BAD_LENGTH;
    }
    uint16_t index = get_u16(p);
    const model_tensor_info *t = model_layer(index);
    if (t == NULL) {
        /* an index outside the table is a request for a tensor that does not exist */
        *detail = (uint32_t)model_layer_count();
        return PROTO_ERR_BAD_SHAPE;
    }
    uint8_t *q = s.stored;
    put_u16(q, index);
    q[2] = t->kind;
    q = put_tensor(q + 3, t);
    q = put_str(q, t->name);
    store_and_send(seq, crc, PROTO_LAYER_INFO, (uint32_t)(q - s.stored));
    return 0;
}

static int handle_stats(uint16_t seq, uint32_t crc, uint32_t len, uint32_t *detail)
{
    if (len != 0) {
        *detail = 0;
        return PROTO_ERR_BAD_LENGTH;
    }
    for (int i = 0; i < PROTO_STAT_COUNT; i++) {
        put_u32(s.stored + 4 * i, s.stats[i]);
    }
    store_and_send(seq, crc, PROTO_STATS_DATA, 4 * PROTO_STAT_COUNT);
    return 0;
}

static int handle_link(uint16_t seq, const uint8_t *payload, uint32_t len, uint32_t *detail)
{
    if (len == 0 || len > PROTO_LINK_PATH_MAX) {
        *detail = PROTO_LINK_PATH_MAX;
        return PROTO_ERR_BAD_LENGTH;
    }
    if (board_link_on()) {
        *detail = 1;
        return PROTO_ERR_NO_LINK;
    }
    int status = board_link_open((const char *)payload, len);
    if (status != 0) {
        *detail = status == -2 ? 2u : 0u;
        return PROTO_ERR_NO_LINK;
    }
    send_out(seq, PROTO_LINK_ACK, 0); /* the first frame on the new link */
    return 0;
}

static void dispatch(void)
{
    uint32_t n = s.length;
    if (n < PROTO_HEADER_BYTES + PROTO_CRC_BYTES) {
        s.stats[PROTO_STAT_BAD_FRAME]++;
        send_error(n >= 4 ? get_u16(s.frame + 2) : PROTO_SEQ_UNKNOWN, 0,
                   PROTO_ERR_BAD_FRAME, n);
        return;
    }
    uint16_t seq = get_u16(s.frame + 2);
    uint8_t cmd = s.frame[4];
    uint32_t crc = proto_crc32(0, s.frame, n - PROTO_CRC_BYTES);
    if (crc != get_u32(s.frame + n - PROTO_CRC_BYTES)) {
        s.stats[PROTO_STAT_BAD_CRC]++;
        send_error(seq, cmd, PROTO_ERR_BAD_CRC, crc);
        return;
    }
    s.stats[PROTO_STAT_FRAMES]++;
    uint32_t len = n - PROTO_HEADER_BYTES - PROTO_CRC_BYTES;
    if (get_u16(s.frame) != len) {
        send_error(seq, cmd, PROTO_ERR_BAD_LENGTH, len);
        return;
    }
    if (s.stored_valid && seq == s.stored_seq && crc == s.stored_crc) {
        s.stats[PROTO_STAT_RETRANSMISSIONS]++;
        send_stored(seq);
        return;
    }
    const uint8_t *payload = s.frame + PROTO_HEADER_BYTES;
    uint32_t detail = 0;
    int error;
    switch (cmd) {
    case PROTO_HELLO:
        error = handle_hello(seq, crc, len, &detail);
        break;
    case PROTO_PING:
        memcpy(s.stored, payload, len);
        store_and_send(seq, crc, PROTO_PONG, len);
        error = 0;
        break;
    case PROTO_INFER:
        error = handle_infer(seq, crc, payload, len, &detail);
        break;
    case PROTO_DEBUG:
        error = handle_debug(seq, payload, len, &detail);
        break;
    case PROTO_RAW:
        error = handle_raw(seq, crc, payload, len, &detail);
        break;
    case PROTO_MONITOR:
        error = handle_monitor(seq, crc, payload, len, &detail);
        break;
    case PROTO_STREAM:
        error = handle_stream(seq, crc, payload, len, &detail);
        break;
    case PROTO_LAYER:
        error = handle_layer(seq, crc, payload, len, &detail);
        break;
    case PROTO_STATS:
        error = handle_stats(seq, crc, len, &detail);
        break;
    case PROTO_LINK:
        error = handle_link(seq, payload, len, &detail);
        break;
    case PROTO_RESET:
        if (len != 0) {
            error = PROTO_ERR_BAD_LENGTH;
            break;
        }
        send_out(seq, PROTO_RESET_ACK, 0);
        for (;;) { /* the reset takes effect a few cycles after the request */
            *(volatile uint32_t *)AIRCR = AIRCR_SYSRESETREQ;
        }
    case PROTO_EXIT:
        if (len != 4) {
            detail = 4;
            error = PROTO_ERR_BAD_LENGTH;
            break;
        }
        send_out(seq, PROTO_EXIT_ACK, 0);
        board_exit((int)get_u32(payload));
    default:
        detail = cmd;
        error = PROTO_ERR_UNKNOWN_COMMAND;
        break;
    }
    if (error) {
        send_error(seq, cmd, (uint8_t)error, detail);
    }
}

/* ---- receiving -------------------------------------------------------------------- */

void proto_feed(uint8_t byte)
{
    if (byte == 0) {
        if (!s.started) {
            return; /* empty frame: a resynchronising delimiter */
        }
        if (s.length > PROTO_FRAME_MAX) {
            s.stats[PROTO_STAT_TOO_LONG]++;
            send_error(get_u16(s.frame + 2), s.frame[4], PROTO_ERR_FRAME_TOO_LONG,
                       PROTO_FRAME_MAX);
        } else if (s.block_left != 0) {
            /* the last block promised more bytes than arrived */
            s.stats[PROTO_STAT_BAD_FRAME]++;
            send_error(PROTO_SEQ_UNKNOWN, 0, PROTO_ERR_BAD_FRAME, s.length);
        } else {
            dispatch();
        }
        decoder_reset();
        return;
    }
    s.started = true;
    bool data = s.block_left != 0;
    if (!data) {
        /* a code byte: first the zero the previous block stood for */
        if (s.zero_pending) {
            if (s.length < PROTO_FRAME_MAX) {
                s.frame[s.length] = 0;
            }
            if (s.length <= PROTO_FRAME_MAX) {
                s.length++;
            }
        }
        s.block_left = byte - 1u;
        s.zero_pending = byte != 0xFF;
        return;
    }
    if (s.length < PROTO_FRAME_MAX) {
        s.frame[s.length] = byte;
    }
    if (s.length <= PROTO_FRAME_MAX) {
        s.length++; /* stops one past the maximum: "too long" */
    }
    s.block_left--;
}
