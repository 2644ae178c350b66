// Load test for lumen-cli serve: N clients stream chat completions back to back for a bounded
// time; prints requests/s, generated tokens/s, time-to-first-token percentiles and whether any
// request was lost (an error, or a stream that ended without its finish and [DONE]).
//
//   node bench/serve_load.mjs --url http://127.0.0.1:8080/v1 [--clients 8] [--seconds 30]
//        [--max-tokens 64] [--api-key KEY] [--prompt TEXT]
//
// Plain fetch (Node 18+), no packages: what is measured is the server, not a client library.

const args = Object.fromEntries(
    process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));
const url = args.url ?? 'http://127.0.0.1:8080/v1';
const clients = Number(args.clients ?? 8);
const seconds = Number(args.seconds ?? 30);
const maxTokens = Number(args['max-tokens'] ?? 64);
const prompt = args.prompt ?? 'Tell me a short story about a robot who learns to paint.';
const headers = { 'Content-Type': 'application/json', ...(args['api-key'] ? { Authorization: `Bearer ${args['api-key']}` } : {}) };

const model = (await (await fetch(`${url}/models`, { headers })).json()).data[0].id;
const ttfts = [], lost = [];
let done = 0, tokens = 0;
const deadline = Date.now() + seconds * 1000;

async function one(client, n) {
    const start = performance.now();
    let first = null, finished = false, sawDone = false, buffer = '';
    const res = await fetch(`${url}/chat/completions`, {
        method: 'POST', headers,
        body: JSON.stringify({ model, messages: [{ role: 'user', content: `${prompt} (${client}.${n})` }], max_tokens: maxTokens,
            stream: true, stream_options: { include_usage: true } }),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    const decoder = new TextDecoder();
    for await (const bytes of res.body) {
        buffer += decoder.decode(bytes, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (!event.startsWith('data: ')) continue;
            const data = event.slice(6);
            if (data === '[DONE]') { sawDone = true; continue; }
            const chunk = JSON.parse(data);
            if (chunk.error) throw new Error(chunk.error.message);
            if (chunk.usage) tokens += chunk.usage.completion_tokens;
            const choice = chunk.choices[0];
            if (choice?.delta?.content && first === null) first = performance.now() - start;
            if (choice?.finish_reason) finished = true;
        }
    }
    if (!finished || !sawDone) throw new Error('the stream ended without its finish or [DONE]');
    if (first !== null) ttfts.push(first);
}

async function client(c) {
    for (let n = 0; Date.now() < deadline; ++n) {
        try {
            await one(c, n);
            ++done;
        } catch (e) {
            lost.push(String(e.message ?? e));
        }
    }
}

const t0 = performance.now();
await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
const wall = (performance.now() - t0) / 1000;
ttfts.sort((a, b) => a - b);
const pct = (p) => (ttfts.length ? ttfts[Math.min(ttfts.length - 1, Math.floor((p / 100) * ttfts.length))].toFixed(0) : '-');
console.log(`${model} at ${url}: ${clients} clients for ${wall.toFixed(1)} s, max_tokens ${maxTokens}`);
console.log(`requests ${done} completed, ${lost.length} lost; ${(done / wall).toFixed(2)} requests/s; ${(tokens / wall).toFixed(1)} generated tokens/s`);
console.log(`TTFT ms: p50 ${pct(50)}, p90 ${pct(90)}, p99 ${pct(99)}, max ${pct(100)}`);
if (lost.length) console.log(`first loss: ${lost[0]}`);
process.exit(lost.length ? 1 : 0);
