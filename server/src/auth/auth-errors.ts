import { AppError } from '../graphql/errors.js';

export class InvalidCredentialsError extends AppError {
  readonly code = 'INVALID_CREDENTIALS';
  constructor() {
    super('The email address or the password is wrong.');
    this.name = 'InvalidCredentialsError';
  }
}
