// A module that exports no Celeriac app: starting a threads/process pool on it must fail clearly.
export const nothing = 1;
