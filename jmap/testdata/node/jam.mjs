// Drives the archive with the npm JMAP client jmap-jam: lists mailboxes,
// pages through the INBOX, reads a message with its bodies, downloads an
// attachment and runs a text search. Prints one JSON object.
//
//   node jam.mjs SESSION_URL LOGIN PASSWORD
import JamClient from 'jmap-jam';
import { createHash } from 'node:crypto';

const [sessionUrl, user, pass] = process.argv.slice(2);
// jmap-jam only knows Bearer tokens: its constructor fetches the session
// with one at once (answered 401), then Basic takes over.
const jam = new JamClient({ sessionUrl, bearerToken: 'unused' });
jam.session.catch(() => {});
jam.authHeader = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
jam.session = JamClient.loadSession(sessionUrl, jam.authHeader);

const out = {};
const accountId = await jam.getPrimaryAccount();
out.accountId = accountId;

const [mb] = await jam.api.Mailbox.get({ accountId, ids: null });
out.mailboxes = mb.list.map((m) => ({ id: m.id, name: m.name, role: m.role, total: m.totalEmails, parentId: m.parentId }));
const inbox = mb.list.find((m) => m.role === 'inbox');

// Page through the INBOX, newest first, seven at a time.
out.paged = [];
for (let position = 0; ; position += 7) {
  const [r] = await jam.requestMany((t) => {
    const q = t.Email.query({
      accountId, filter: { inMailbox: inbox.id }, position, limit: 7, calculateTotal: true,
      sort: [{ property: 'receivedAt', isAscending: false }],
    });
    const g = t.Email.get({ accountId, ids: q.$ref('/ids'), properties: ['subject', 'from', 'receivedAt', 'size'] });
    return { q, g };
  });
  for (const e of r.g.list) out.paged.push({ id: e.id, subject: e.subject, from: e.from?.[0]?.email, receivedAt: e.receivedAt });
  out.total = r.q.total;
  if (position + 7 >= r.q.total) break;
}

// Read one message found by a text search, with its bodies.
const [found] = await jam.requestMany((t) => {
  const q = t.Email.query({ accountId, filter: { text: 'Köln', hasAttachment: true } });
  const g = t.Email.get({
    accountId, ids: q.$ref('/ids'), fetchTextBodyValues: true,
    properties: ['subject', 'from', 'textBody', 'attachments', 'bodyValues', 'keywords', 'mailboxIds'],
  });
  return { q, g };
});
const msg = found.g.list[0];
out.message = {
  id: msg.id, subject: msg.subject, from: msg.from,
  text: msg.bodyValues[msg.textBody[0].partId].value, keywords: msg.keywords,
  attachment: { name: msg.attachments[0].name, type: msg.attachments[0].type, size: msg.attachments[0].size },
};

const blob = await jam.downloadBlob({
  accountId, blobId: msg.attachments[0].blobId, mimeType: msg.attachments[0].type, fileName: msg.attachments[0].name,
});
const bytes = Buffer.from(await blob.arrayBuffer());
out.download = { status: blob.status, type: blob.headers.get('content-type'), sha256: createHash('sha256').update(bytes).digest('hex') };

// A method error surfaces as a thrown error object.
try {
  await jam.api.Email.get({ accountId: 'A999999', ids: [] });
  out.error = null;
} catch (e) {
  out.error = e.type;
}
console.log(JSON.stringify(out));
