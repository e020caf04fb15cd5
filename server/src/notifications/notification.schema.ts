import { mayActFor } from '../auth/viewer.js';
import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { forbidden, InvalidInputError } from '../graphql/errors.js';
import { targetCustomer } from '../jobs/job-requests.js';
import {
  type NotificationSettings,
  notificationSettings,
  updateNotificationSettings,
} from './notification-settings.js';

const NotificationSettingsRef = builder
  .objectRef<NotificationSettings>('NotificationSettings')
  .implement({
    description: 'Which e-mails the customer gets',
    fields: (t) => ({
      restoreCompleted: t.exposeBoolean('restore_completed'),
      restoreFailed: t.exposeBoolean('restore_failed'),
      dailyBackupFailedTwice: t.exposeBoolean('daily_failed_twice', {
        description: 'a daily backup failed for the second time in a row',
      }),
      drillFailed: t.exposeBoolean('drill_failed', {
        description: 'a test restore of a backup failed',
      }),
    }),
  });

builder.objectField(CustomerRef, 'notificationSettings', (t) =>
  t.field({
    type: NotificationSettingsRef,
    resolve: (customer, _args, ctx) => {
      if (!mayActFor(ctx.viewer, customer.id)) throw forbidden();
      return notificationSettings(ctx.em, customer.id);
    },
  }),
);

builder.mutationField('updateNotificationSettings', (t) =>
  t.field({
    type: NotificationSettingsRef,
    description: 'switches the named e-mails on or off; the others stay as they are',
    args: {
      restoreCompleted: t.arg.boolean(),
      restoreFailed: t.arg.boolean(),
      dailyBackupFailedTwice: t.arg.boolean(),
      drillFailed: t.arg.boolean(),
      customerId: t.arg.id({ description: 'admin tokens: the customer to act for' }),
    },
    authScopes: { signedIn: true },
    errors: {
      types: [InvalidInputError],
      directResult: true,
      union: { name: 'UpdateNotificationSettingsResult' },
    },
    resolve: async (_root, args, ctx) => {
      const customer = await targetCustomer(ctx, args.customerId);
      const changes: Partial<NotificationSettings> = {};
      if (typeof args.restoreCompleted === 'boolean')
        changes.restore_completed = args.restoreCompleted;
      if (typeof args.restoreFailed === 'boolean') changes.restore_failed = args.restoreFailed;
      if (typeof args.dailyBackupFailedTwice === 'boolean') {
        changes.daily_failed_twice = args.dailyBackupFailedTwice;
      }
      if (typeof args.drillFailed === 'boolean') changes.drill_failed = args.drillFailed;
      return updateNotificationSettings(ctx.em, customer.id, changes);
    },
  }),
);
