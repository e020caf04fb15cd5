// A real SMTP server for the tests, run as its own process (smtp-server, the SMTP half of
// nodemailer's project): it takes every message on 127.0.0.1:<port>, parses it (mailparser) and
// appends it as one JSON line to <file>. With <reject-first> N, the first N messages are
// answered 451 (try again later), as a busy server does.
import { appendFileSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

const [port, file, rejectFirst = '0'] = process.argv.slice(2);
let seen = 0;

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, session, callback) {
    simpleParser(stream)
      .then((mail) => {
        seen += 1;
        if (seen <= Number(rejectFirst)) {
          const busy = new Error('busy, try again later');
          busy.responseCode = 451;
          callback(busy);
          return;
        }
        appendFileSync(
          file,
          `${JSON.stringify({
            from: session.envelope.mailFrom?.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: mail.subject,
            text: mail.text,
            html: mail.html,
          })}\n`,
        );
        callback();
      })
      .catch(callback);
  },
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
