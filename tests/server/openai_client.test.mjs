// lumen-cli serve driven by OpenAI's official client library (openai on npm, pinned in
// package.json) and by raw HTTP for the error cases. Run by tests/server/tst_openai_server
// (which makes the models and sets the variables below); exits 0 when all is well, 77 when the
// client library is not installed (scripts/install-deps.sh installs it), 1 on a failure.
//
//   LUMEN_CLI     the lumen-cli binary
//   MODEL         a small chat model (the real TinyStories model when ../shared is there)
//   SLOW_MODEL    a larger random model with a long context (a reply that takes seconds: cancel)
//   VISION_MODEL, MMPROJ, IMAGE   a model with its image projector, and a PNG
//   EMBED_MODEL   a CLIP folder (with its text encoder) for /v1/embeddings

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

const require = createRequire(import.meta.url);
let OpenAI;
try {
    OpenAI = (await import(require.resolve('openai'))).default;
} catch {
    console.log('SKIP: the openai client library is not installed in tests/server/node_modules (run scripts/install-deps.sh)');
    process.exit(77);
}

const env = (name) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
};

// Starts lumen-cli serve on a free loopback port; resolves to {url, child, log()}.
function serve(args, { expectFailure = false } = {}) {
    return new Promise((resolve, reject) => {
        const child = spawn(env('LUMEN_CLI'), ['serve', '--port', '0', '--gpu-layers', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '', err = '';
        child.stdout.on('data', (d) => {
            out += d;
            const m = out.match(/listening on (http:\/\/[^ ]+\/v1)/);
            if (m && !expectFailure) resolve({ url: m[1], child, log: () => err });
        });
        child.stderr.on('data', (d) => { err += d; });
        child.on('exit', (code) => {
            if (expectFailure) resolve({ code, out, err });
            else reject(new Error(`lumen-cli serve exited with ${code}: ${err}`));
        });
    });
}

function stop(server) {
    return new Promise((resolve) => {
        server.child.removeAllListeners('exit');
        server.child.on('exit', resolve);
        server.child.kill('SIGINT');
    });
}

// A raw request: resolves to {status, json, text}. The body goes chunked unless `length` is set
// (then with its Content-Length, as OpenAI's libraries send it).
function raw(url, method, pathName, body, headers = {}, { length = false } = {}) {
    return new Promise((resolve, reject) => {
        const u = new URL(url.replace(/\/v1$/, '') + pathName);
        const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
        const sized = length && data !== undefined ? { 'Content-Length': Buffer.byteLength(data) } : {};
        const req = http.request(u, { method, headers: { 'Content-Type': 'application/json', ...sized, ...headers } }, (res) => {
            let text = '';
            res.on('data', (d) => { text += d; });
            res.on('end', () => {
                let json = null;
                try { json = JSON.parse(text); } catch { /* not JSON */ }
                resolve({ status: res.statusCode, json, text });
            });
        });
        req.on('error', reject);
        req.on('error', () => {});  // (a server that answers before the whole body is sent)
        if (data !== undefined) req.write(data);
        req.end();
    });
}

async function until(condition, what, ms = 15000) {
    const start = Date.now();
    while (!condition()) {
        if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

let server, client, modelId;

check('models', async () => {
    const models = await client.models.list();
    assert.equal(models.data.length, 1);
    modelId = models.data[0].id;
    assert.equal(modelId, path.basename(env('MODEL')));
    assert.equal((await client.models.retrieve(modelId)).id, modelId);
    const health = await raw(server.url, 'GET', '/health');
    assert.equal(health.status, 200);
    assert.equal(health.json.status, 'ok');
});

const ask = { messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Once upon a time' }], temperature: 0, max_tokens: 24 };
let reference;

check('chat, not streamed', async () => {
    const r = await client.chat.completions.create({ model: modelId, ...ask });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(r.choices[0].message.content.length > 0);
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.prompt_tokens > 5);
    assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    reference = r;
});

check('chat, streamed: the same text, then the usage', async () => {
    const stream = await client.chat.completions.create({ model: modelId, ...ask, stream: true, stream_options: { include_usage: true } });
    let text = '', role = null, finish = null, usage = null;
    for await (const chunk of stream) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        if (chunk.usage) usage = chunk.usage;
        if (!chunk.choices.length) continue;
        const delta = chunk.choices[0].delta;
        if (delta.role) role = delta.role;
        if (delta.content) text += delta.content;
        if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
    }
    assert.equal(role, 'assistant');
    assert.equal(text, reference.choices[0].message.content);
    assert.equal(finish, reference.choices[0].finish_reason);
    assert.deepEqual(usage, reference.usage);
});

check('completions, streamed and not, with echo', async () => {
    const base = { model: modelId, prompt: 'Once upon a time', temperature: 0, max_tokens: 16 };
    const r = await client.completions.create(base);
    assert.equal(r.object, 'text_completion');
    assert.ok(r.choices[0].text.length > 0);
    let streamed = '';
    for await (const chunk of await client.completions.create({ ...base, stream: true })) streamed += chunk.choices[0]?.text ?? '';
    assert.equal(streamed, r.choices[0].text);
    const echoed = await client.completions.create({ ...base, echo: true });
    assert.equal(echoed.choices[0].text, 'Once upon a time' + r.choices[0].text);
});

check('stop strings and max_tokens', async () => {
    const base = { model: modelId, prompt: 'Once upon a time', temperature: 0, max_tokens: 40 };
    const full = (await client.completions.create(base)).choices[0].text;
    const words = full.split(' ').filter((w) => w.length >= 3);
    assert.ok(words.length >= 2, `too few words to stop at in ${JSON.stringify(full)}`);
    const stopAt = ' ' + words[1];
    const cut = await client.completions.create({ ...base, stop: [stopAt, 'never-seen'] });
    assert.equal(cut.choices[0].text, full.slice(0, full.indexOf(stopAt)));
    assert.equal(cut.choices[0].finish_reason, 'stop');
    const short = await client.completions.create({ ...base, max_tokens: 3 });
    assert.equal(short.usage.completion_tokens, 3);
    assert.equal(short.choices[0].finish_reason, 'length');
});

check('a seed gives the same sample again', async () => {
    const base = { model: modelId, ...ask, temperature: 1.2, seed: 1234 };
    const a = await client.chat.completions.create(base);
    const b = await client.chat.completions.create(base);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

check('concurrent clients each get their whole reply', async () => {
    const runs = await Promise.all([0, 1, 2, 3, 4, 5].map(async (i) => {
        if (i % 2) return (await client.chat.completions.create({ model: modelId, ...ask })).choices[0].message.content;
        let text = '';
        for await (const chunk of await client.chat.completions.create({ model: modelId, ...ask, stream: true })) text += chunk.choices[0]?.delta?.content ?? '';
        return text;
    }));
    for (const text of runs) assert.equal(text, reference.choices[0].message.content);
});

check('errors in OpenAI\'s shape', async () => {
    const expectError = (r, status, code) => {
        assert.equal(r.status, status, r.text);
        assert.equal(typeof r.json.error.message, 'string');
        assert.equal(typeof r.json.error.type, 'string');
        if (code !== undefined) assert.equal(r.json.error.code, code);
    };
    expectError(await raw(server.url, 'POST', '/v1/chat/completions', '{"messages": [}'), 400);
    expectError(await raw(server.url, 'POST', '/v1/chat/completions', { messages: [] }), 400);
    expectError(await raw(server.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], temperature: 'hot' }), 400);
    expectError(await raw(server.url, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }), 404, 'model_not_found');
    expectError(await raw(server.url, 'POST', '/v1/completions', { prompt: 'word '.repeat(2000) }), 400, 'context_length_exceeded');
    expectError(await raw(server.url, 'POST', '/v1/completions', { prompt: 'Once', max_tokens: 500 }), 400, 'context_length_exceeded');
    expectError(await raw(server.url, 'POST', '/v1/completions', { prompt: 'x'.repeat(40 << 20) }), 413);
    expectError(await raw(server.url, 'POST', '/v1/completions', { prompt: 'x'.repeat(40 << 20) }, {}, { length: true }), 413);
    // A POST that says nothing of its body's length: refused at once (not read until a timeout).
    const started = Date.now();
    const lengthless = await new Promise((resolve, reject) => {
        const u = new URL(server.url);
        const socket = net.connect(Number(u.port), u.hostname, () => socket.write(`POST /v1/completions HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\n\r\n`));
        let text = '';
        socket.on('data', (d) => {
            text += d;
            if (text.includes('\r\n\r\n') && text.includes('}}')) {
                socket.destroy();
                resolve(text);
            }
        });
        socket.on('error', reject);
    });
    assert.match(lengthless, /^HTTP\/1\.1 411/);
    assert.ok(Date.now() - started < 5000);
    // The connection goes on after a refused body: the next request on it is answered.
    assert.equal((await raw(server.url, 'GET', '/health')).status, 200);
    // Without a key, only requests for the loopback, and only JSON bodies (web pages cannot).
    expectError(await raw(server.url, 'POST', '/v1/completions', '{"prompt": "x"}', { 'Content-Type': 'text/plain' }), 415);
    expectError(await raw(server.url, 'GET', '/v1/models', undefined, { Host: 'evil.example:8080' }), 403);
    expectError(await raw(server.url, 'POST', '/v1/completions', '[' .repeat(100) + ']'.repeat(100)), 400);
    expectError(await raw(server.url, 'GET', '/v1/nothing-here'), 404);
    const image = 'data:image/png;base64,' + readFileSync(env('IMAGE')).toString('base64');
    expectError(await raw(server.url, 'POST', '/v1/chat/completions',
        { messages: [{ role: 'user', content: [{ type: 'text', text: 'what is it?' }, { type: 'image_url', image_url: { url: image } }] }] }), 400);
    // Through the client library: its error class, with the status.
    await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }), (e) => e.status === 404);
});

const tests = async () => {
    for (const { name, fn } of checks) {
        process.stdout.write(`- ${name}: `);
        await fn();
        console.log('ok');
    }
};

// Killed (a test's timeout): the servers go too.
process.on('SIGTERM', () => {
    server?.child?.kill('SIGKILL');
    process.exit(1);
});

let failed = false;
try {
    server = await serve(['--model', env('MODEL'), '--ctx-size', '512']);
    client = new OpenAI({ baseURL: server.url, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    await tests();
    await stop(server);

    // A client that goes away cancels its reply: the engine is free for the next one at once.
    process.stdout.write('- a disconnected stream is cancelled: ');
    server = await serve(['--model', env('SLOW_MODEL'), '--ctx-size', '4096']);
    client = new OpenAI({ baseURL: server.url, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    const controller = new AbortController();
    const stream = await client.completions.create({ model: path.basename(env('SLOW_MODEL')), prompt: 'a', max_tokens: 4000, temperature: 0, stream: true },
        { signal: controller.signal });
    let pieces = 0;
    try {
        for await (const chunk of stream) {
            if (chunk.choices.length && ++pieces === 3) controller.abort();
        }
    } catch (e) {
        assert.ok(e.name === 'APIUserAbortError' || e.name === 'AbortError', String(e));
    }
    await until(() => /completions cancelled/.test(server.log()), 'the server to say the stream was cancelled');
    assert.ok(!/completions 200 \(streamed\)/.test(server.log()), server.log());
    const next = await client.completions.create({ model: path.basename(env('SLOW_MODEL')), prompt: 'b', max_tokens: 2 });
    assert.equal(next.usage.completion_tokens, 2);
    await stop(server);
    console.log('ok');

    // Images through the projector, as data URLs.
    process.stdout.write('- images: ');
    server = await serve(['--model', env('VISION_MODEL'), '--mmproj', env('MMPROJ')]);
    client = new OpenAI({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 });
    const image = 'data:image/png;base64,' + readFileSync(env('IMAGE')).toString('base64');
    const textOnly = await client.chat.completions.create({ messages: [{ role: 'user', content: 'Describe it.' }], max_tokens: 4, temperature: 0, model: path.basename(env('VISION_MODEL')) });
    const withImage = await client.chat.completions.create({ model: path.basename(env('VISION_MODEL')), max_tokens: 4, temperature: 0,
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: image } }, { type: 'text', text: 'Describe it.' }] }] });
    assert.ok(withImage.usage.prompt_tokens > textOnly.usage.prompt_tokens, JSON.stringify([withImage.usage, textOnly.usage]));
    const broken = await raw(server.url, 'POST', '/v1/chat/completions',
        { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8=' } }] }] });
    assert.equal(broken.status, 400, broken.text);
    const remote = await raw(server.url, 'POST', '/v1/chat/completions',
        { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] });
    assert.equal(remote.status, 400, remote.text);
    await stop(server);
    console.log('ok');

    // Embeddings of texts and images: the client library's default (base64) and floats, unit
    // length, equal to what lumen-cli embed --normalize computes.
    process.stdout.write('- embeddings: ');
    server = await serve(['--model', env('MODEL'), '--embed-model', env('EMBED_MODEL')]);
    client = new OpenAI({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 });
    const embedId = path.basename(env('EMBED_MODEL'));
    assert.deepEqual((await client.models.list()).data.map((m) => m.id).sort(), [embedId, path.basename(env('MODEL'))].sort());
    const embedded = JSON.parse(spawnSync(env('LUMEN_CLI'), ['embed', '--model', env('EMBED_MODEL'), '--device', 'cpu', '--normalize', '--json',
        '--text', 'a photo of a cat', '--image', env('IMAGE')], { encoding: 'utf8' }).stdout);
    const local = [embedded.find((e) => e.kind === 'text'), embedded.find((e) => e.kind === 'image')];
    const close = (a, b) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < 1e-4);
    const viaLibrary = await client.embeddings.create({ model: embedId, input: ['a photo of a cat', 'data:image/png;base64,' + readFileSync(env('IMAGE')).toString('base64')] });
    assert.equal(viaLibrary.data.length, 2);
    assert.ok(close(viaLibrary.data[0].embedding, local[0].embedding), JSON.stringify([viaLibrary.data[0].embedding, local[0].embedding]));
    assert.ok(close(viaLibrary.data[1].embedding, local[1].embedding));
    assert.ok(viaLibrary.usage.prompt_tokens > 2);
    const floats = await client.embeddings.create({ model: embedId, input: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,' + readFileSync(env('IMAGE')).toString('base64') } }],
        encoding_format: 'float' });
    assert.ok(close(floats.data[0].embedding, local[1].embedding));
    const norm = Math.hypot(...floats.data[0].embedding);
    assert.ok(Math.abs(norm - 1) < 1e-4, String(norm));
    assert.equal((await raw(server.url, 'POST', '/v1/embeddings', { input: [1, 2, 3] })).status, 400);
    assert.equal((await raw(server.url, 'POST', '/v1/embeddings', { model: 'other', input: 'x' })).status, 404);
    assert.equal((await raw(server.url, 'POST', '/v1/embeddings', { input: 'data:image/png;base64,aGVsbG8=' })).status, 400);
    await stop(server);
    console.log('ok');

    // An API key: required when set, and required to listen beyond the loopback.
    process.stdout.write('- API key: ');
    server = await serve(['--model', env('MODEL'), '--api-key', 'sesame']);
    const anonymous = await raw(server.url, 'GET', '/v1/models');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json.error.code, 'invalid_api_key');
    assert.equal((await raw(server.url, 'GET', '/v1/models', undefined, { Authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await raw(server.url, 'GET', '/health')).status, 200);
    const keyed = new OpenAI({ baseURL: server.url, apiKey: 'sesame', maxRetries: 0 });
    assert.equal((await keyed.models.list()).data.length, 1);
    await assert.rejects(new OpenAI({ baseURL: server.url, apiKey: 'wrong', maxRetries: 0 }).models.list(), (e) => e.status === 401);
    await stop(server);
    const open = await serve(['--model', env('MODEL'), '--host', '0.0.0.0'], { expectFailure: true });
    assert.equal(open.code, 2);
    assert.match(open.err, /--api-key/);
    console.log('ok');
} catch (e) {
    failed = true;
    console.log('FAILED');
    console.error(e);
    if (server?.log) console.error('--- server log ---\n' + server.log());
    server?.child?.kill('SIGKILL');
}
process.exit(failed ? 1 : 0);
