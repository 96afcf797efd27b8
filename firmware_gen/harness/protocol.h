/*
 * protocol.h - the serial protocol between a drsn-edge board and the host runner.
 *
 * The host side is runner/protocol.py (framing) and runner/link.py (Device); the numbers
 * below must match it. Everything is little-endian.
 *
 * Frame, before encoding:
 *     [len u16][seq u16][cmd u8][payload: len bytes][crc32 u32]
 * crc32 is the IEEE CRC-32 (reflected, as zlib.crc32) of every byte before it. The frame
 * is COBS-encoded, so it contains no 0x00, and a 0x00 delimiter follows it. Both sides
 * also send a 0x00 before every frame: whatever garbage or half frame preceded it then
 * ends as a frame of its own (answered with an ERROR) instead of corrupting this one.
 * Empty frames (two delimiters in a row) are ignored. The payload is at most
 * PROTO_MAX_PAYLOAD bytes, reported by INFO.
 *
 * Start-up: the firmware sends nothing until it has received a request, so the host can
 * connect at any time (a real board may have booted long before) and synchronises by
 * sending 0x00 followed by HELLO.
 *
 * Flow control is stop-and-wait: the host sends one request and waits for its response,
 * which echoes the request's seq. A host that hears nothing re-sends the same frame with
 * the same seq; the firmware recognises the retransmission (same seq and same CRC as the
 * last request it answered) and re-sends the stored response instead of running the
 * request again, so an inference is never run twice nor its result lost. Error responses
 * are not stored (the request runs again), DEBUG is not stored (it is deterministic and
 * too big to keep), and RESET forgets everything. seq 0xFFFF is never used by the host:
 * it marks an ERROR whose request could not be read.
 *
 * Requests and their responses (payloads):
 *   HELLO  0x01 ()                            -> INFO 0x81 (see proto_info_payload)
 *   PING   0x02 (any bytes)                   -> PONG 0x82 (the same bytes)
 *   INFER  0x03 (batch u16, ndim u8, dims u32 x ndim, batch x input bytes)
 *                                             -> RESULT 0x83, one or more frames
 *          each RESULT frame: (part u16, parts u16, chunk); the chunks joined in part
 *          order are (batch u16, work u64 x batch, batch x output bytes), work being the
 *          board_counter reading around each model_invoke.
 *   DEBUG  0x04 (ndim u8, dims u32 x ndim, one input)
 *                                             -> DEBUG_DATA 0x84 (layer u16, offset u32,
 *          bytes) frames, each layer's tensor split as needed, then
 *          DEBUG_END 0x94 (layers u16 = number of tensors emitted, output bytes)
 *   LAYER  0x05 (index u16)                   -> LAYER_INFO 0x85 (index u16, kind u8,
 *          tensor, name str)
 *   STATS  0x06 ()                            -> STATS 0x86 (PROTO_STAT_COUNT x u32)
 *   RESET  0x07 ()                            -> ACK 0x87, then a system reset
 *   EXIT   0x08 (code i32)                    -> ACK 0x88, then board_exit(code)
 *   RAW    0x09 (samples u32, samples x i16)  -> RAW_RESULT 0x89 (work_pre u64, work u64,
 *          input bytes, output bytes): one window of raw sensor samples (samples must be
 *          the model's input size), preprocessed on the board into the model's int8 input
 *          (dk_preprocess_s16, defined in drsn_edge/preprocess.py), then run through the
 *          model; the answer holds that int8 input and the output, with the board_counter
 *          readings around the preprocessing and around model_invoke.
 *   MONITOR 0x0A (hop u32, mode u8, smooth_windows u16)
 *                                             -> MONITOR_ACK 0x8A (window u32, hop u32,
 *          mode u8, smooth_windows u16, max_verdicts u16, ring_bytes u32, scratch_bytes
 *          u32): starts (or restarts) a stream (monitor.h): the board forgets earlier
 *          samples and verdicts. mode 0 majority, 1 mean. hop 0 or above the window ->
 *          BAD_HOP (detail: the window); a bad mode or smooth_windows -> BAD_SMOOTHING
 *          (detail: the largest smooth_windows).
 *   STREAM  0x0B (flags u8, samples x i16)    -> VERDICTS 0x8B (received u32, until_next
 *          u32, count u16, ended u8, count x verdict), verdict = (start u32, class u8,
 *          smoothed u8, work_pre u32, work u32, input_crc u32, output bytes): the next chunk
 *          of the stream; one verdict for every window completed by it (input_crc: the
 *          CRC-32 of the int8 input the board preprocessed, so the host can check it). flags bit 0 (END): the
 *          stream ends after this chunk (a new MONITOR starts another). Before MONITOR ->
 *          NOT_STREAMING; an odd sample byte count -> BAD_LENGTH (detail: the payload
 *          length); a chunk completing more windows than one answer holds ->
 *          BATCH_TOO_LARGE (detail: max_verdicts; nothing is consumed); END before one
 *          whole window arrived -> STREAM_SHORT (detail: samples received).
 *   LINK   0x0C (dir: the path of a directory on the emulator's host, no NUL)
 *                                             -> LINK_ACK 0x8C (), sent on the new link:
 *          moves the link onto the semihosting pipes <dir>/in and <dir>/out (board.h,
 *          board_link_open); the board returns to the UART when the host closes them.
 *          A path longer than PROTO_LINK_PATH_MAX -> BAD_LENGTH (detail: the maximum);
 *          pipes that cannot be opened, a link already moved, or a core where semihosting
 *          would halt it (real silicon) -> NO_LINK.
 *   any failure                               -> ERROR 0xFF (code u8, cmd u8, detail u32)
 * where tensor = (ndim u8, dims u32 x ndim, size u32, scale f32, zero_point i32) and
 * str = (length u8, bytes).
 */
#ifndef DRSN_PROTOCOL_H
#define DRSN_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PROTO_VERSION 1

/* Largest payload of one frame. 4 KB holds a few 1024-sample inputs per request and keeps
 * the two frame buffers small enough for a 64 KB part. */
#ifndef PROTO_MAX_PAYLOAD
#define PROTO_MAX_PAYLOAD 4096u
#endif
/* Stored response (the retransmission cache); bounds the RESULT of one INFER and so the
 * largest batch together with PROTO_MAX_PAYLOAD. */
#ifndef PROTO_RESPONSE_BYTES
#define PROTO_RESPONSE_BYTES 16384u
#endif
#ifndef PROTO_FIRMWARE_VERSION
#define PROTO_FIRMWARE_VERSION "0.1.0"
#endif

#define PROTO_HEADER_BYTES 5u /* len, seq, cmd */
#define PROTO_CRC_BYTES 4u
#define PROTO_FRAME_MAX (PROTO_HEADER_BYTES + PROTO_MAX_PAYLOAD + PROTO_CRC_BYTES)
#define PROTO_SEQ_UNKNOWN 0xFFFFu
#define PROTO_RESULT_PART_HEADER 4u /* part u16, parts u16 */
#define PROTO_DEBUG_DATA_HEADER 6u  /* layer u16, offset u32 */
#define PROTO_RAW_HEADER 4u         /* samples u32 */
#define PROTO_RAW_RESULT_HEADER 16u /* work_pre u64, work u64 */
#define PROTO_VERDICTS_HEADER 11u   /* received u32, until_next u32, count u16, ended u8 */
#define PROTO_VERDICT_BYTES 18u     /* start u32, class u8, smoothed u8, work_pre u32, work u32,
                                       input_crc u32 */
#define PROTO_STREAM_END 0x01u
#define PROTO_LINK_PATH_MAX 200u    /* LINK: bytes of the directory path */

enum proto_command {
    PROTO_HELLO = 0x01,
    PROTO_PING = 0x02,
    PROTO_INFER = 0x03,
    PROTO_DEBUG = 0x04,
    PROTO_LAYER = 0x05,
    PROTO_STATS = 0x06,
    PROTO_RESET = 0x07,
    PROTO_EXIT = 0x08,
    PROTO_RAW = 0x09,
    PROTO_MONITOR = 0x0A,
    PROTO_STREAM = 0x0B,
    PROTO_LINK = 0x0C,

    PROTO_INFO = 0x81,
    PROTO_PONG = 0x82,
    PROTO_RESULT = 0x83,
    PROTO_DEBUG_DATA = 0x84,
    PROTO_DEBUG_END = 0x94,
    PROTO_LAYER_INFO = 0x85,
    PROTO_STATS_DATA = 0x86,
    PROTO_RESET_ACK = 0x87,
    PROTO_EXIT_ACK = 0x88,
    PROTO_RAW_RESULT = 0x89,
    PROTO_MONITOR_ACK = 0x8A,
    PROTO_VERDICTS = 0x8B,
    PROTO_LINK_ACK = 0x8C,
    PROTO_ERROR = 0xFF,
};

enum proto_error {
    PROTO_ERR_BAD_CRC = 1,         /* detail: CRC computed over the frame */
    PROTO_ERR_UNKNOWN_COMMAND = 2, /* detail: the command byte */
    PROTO_ERR_BAD_LENGTH = 3,      /* detail: payload length expected */
    PROTO_ERR_BAD_SHAPE = 4,       /* detail: the model's tensor size in bytes */
    PROTO_ERR_BATCH_TOO_LARGE = 5, /* detail: largest batch */
    PROTO_ERR_FRAME_TOO_LONG = 6,  /* detail: PROTO_FRAME_MAX */
    PROTO_ERR_BUSY = 7,            /* detail: model status; retry later */
    PROTO_ERR_INTERNAL = 8,        /* detail: model status */
    PROTO_ERR_BAD_FRAME = 9,       /* broken COBS or shorter than a header; detail: bytes */
    PROTO_ERR_PREPROCESS = 10,     /* RAW: dk_preprocess_s16 refused; detail: its status */
    PROTO_ERR_BAD_HOP = 11,        /* MONITOR: hop 0 or above the window; detail: window */
    PROTO_ERR_BAD_SMOOTHING = 12,  /* MONITOR: bad mode or smooth_windows; detail: max */
    PROTO_ERR_NOT_STREAMING = 13,  /* STREAM before MONITOR (or after END / a failure) */
    PROTO_ERR_STREAM_SHORT = 14,   /* STREAM END before a whole window; detail: samples */
    PROTO_ERR_NO_LINK = 15,        /* LINK: detail 0 pipes not opened, 1 link already moved,
                                      2 no semihosting host (real silicon) */
};

/* Counters reported by STATS, in this order. */
enum proto_stat {
    PROTO_STAT_FRAMES,         /* frames received with a valid CRC */
    PROTO_STAT_BAD_CRC,
    PROTO_STAT_BAD_FRAME,
    PROTO_STAT_TOO_LONG,
    PROTO_STAT_ERRORS_SENT,    /* all ERROR frames, link-level ones included */
    PROTO_STAT_RETRANSMISSIONS,/* requests answered from the stored response */
    PROTO_STAT_INVOCATIONS,    /* model_invoke + model_invoke_debug calls */
    PROTO_STAT_COUNT,
};

/* Reset all protocol state; call once after board_init() and model_init(). */
void proto_init(int model_status);

/* Feed one received byte; complete frames are answered from within this call. */
void proto_feed(uint8_t byte);

/* zlib-compatible CRC-32 continuing from `crc` (start with 0); valid after proto_init. */
uint32_t proto_crc32(uint32_t crc, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* DRSN_PROTOCOL_H */
