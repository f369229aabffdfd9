/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A structure-aware mutation for JSON inputs of the fuzz harnesses.
 *
 * Byte mutations rarely turn a valid manifest or request body into
 * another valid one that differs in one value: most break the JSON and
 * stop at the parser.  This one parses the document with json-c, changes
 * one value (a string cut short or replaced by a tricky one, another
 * type, a member removed or repeated under another known key) and writes
 * it back, so the checks after parsing are what gets fuzzed.
 */
#ifndef VV_FUZZ_JSON_MUTATOR_H
#define VV_FUZZ_JSON_MUTATOR_H

#include <stddef.h>
#include <stdint.h>

/* Mutates the JSON document json[0..len) in place (at most max bytes);
 * returns the new length, or 0 when the text is not JSON or the result
 * would not fit.
 */
size_t fuzz_json_mutate (uint8_t *json, size_t len, size_t max,
                         unsigned seed);

/* libFuzzer's own mutation, for the bytes fuzz_json_mutate cannot use. */
size_t LLVMFuzzerMutate (uint8_t *data, size_t size, size_t max_size);

/* Where the JSON document of an input starts (0 for a whole-document
 * input), or a value past size when it has none: each harness linked
 * with json-mutator.c defines it.  json-mutator.c defines libFuzzer's
 * LLVMFuzzerCustomMutator: half the time one JSON value of the document
 * changes, else (or when it is not JSON) libFuzzer's byte mutations run
 * anywhere in the input.
 */
size_t fuzz_json_start (const uint8_t *data, size_t size);

#endif
